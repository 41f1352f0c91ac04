//! The escape character (`~` by default) on the interactive input stream:
//! recognised only right after a newline (or at the very start), as in ssh.
//! Sans-IO: bytes in, bytes to send and actions out.

/// What the user asked for with an escape sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeAction {
    /// `~.`: close the connection.
    Disconnect,
    /// `~?`: print this help text locally.
    Help(String),
    /// `~#`: list the open forwarded connections.
    ListConnections,
}

/// Tracks line starts and a pending escape character.
#[derive(Debug)]
pub struct EscapeFilter {
    escape: u8,
    at_line_start: bool,
    pending: bool,
}

impl EscapeFilter {
    pub fn new(escape: u8) -> Self {
        EscapeFilter {
            escape,
            at_line_start: true,
            pending: false,
        }
    }

    /// Filters one chunk of input.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, Vec<EscapeAction>) {
        let mut out = Vec::with_capacity(input.len());
        let mut actions = Vec::new();
        for &b in input {
            if self.pending {
                self.pending = false;
                match b {
                    b'.' => {
                        actions.push(EscapeAction::Disconnect);
                        return (out, actions);
                    }
                    b'?' => {
                        actions.push(EscapeAction::Help(self.help()));
                        continue;
                    }
                    b'#' => {
                        actions.push(EscapeAction::ListConnections);
                        continue;
                    }
                    b if b == self.escape => {
                        out.push(b);
                        self.at_line_start = false;
                        continue;
                    }
                    _ => out.push(self.escape),
                }
            } else if self.at_line_start && b == self.escape {
                self.pending = true;
                continue;
            }
            out.push(b);
            self.at_line_start = b == b'\r' || b == b'\n';
        }
        (out, actions)
    }

    fn help(&self) -> String {
        let e = self.escape as char;
        format!(
            "Supported escape sequences:\r\n {e}.   - terminate connection\r\n \
             {e}#   - list forwarded connections\r\n {e}?   - this message\r\n {e}{e}   - send the escape character by typing it twice\r\n\
             (Note that escapes are only recognized immediately after newline.)\r\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_at_line_start() {
        let cases: &[(&[u8], &[u8], usize)] = &[
            (b"ls\n~.", b"ls\n", 1),
            (b"a~.b", b"a~.b", 0),
            (b"~~x", b"~x", 0),
            (b"~x", b"~x", 0),
            (b"\r~?", b"\r", 1),
            (b"~#", b"", 1),
        ];
        for (input, want, n_actions) in cases {
            let (out, actions) = EscapeFilter::new(b'~').feed(input);
            assert_eq!(
                &out[..],
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                actions.len(),
                *n_actions,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn escape_split_across_chunks() {
        let mut f = EscapeFilter::new(b'~');
        assert_eq!(f.feed(b"~").0, b"");
        let (out, actions) = f.feed(b".");
        assert!(out.is_empty());
        assert_eq!(actions, vec![EscapeAction::Disconnect]);
    }
}
