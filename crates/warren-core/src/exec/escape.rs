//! The escape character (`~` by default) on the interactive input stream:
//! recognised only right after a newline (or at the very start), as in ssh.
//! Sans-IO: bytes in, bytes to send and actions out.
//!
//! Design choice: `~C`'s `ssh>` line is edited here too (the terminal is in
//! raw mode, so the filter echoes what is typed and handles backspace), and
//! the finished line comes out as one [`EscapeAction::Command`].

/// The longest `ssh>` line kept; further bytes are dropped.
const MAX_COMMAND_LINE: usize = 1024;

/// What the user asked for with an escape sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EscapeAction {
    /// `~.`: close the connection.
    Disconnect,
    /// `~?`: print this help text locally.
    Help(String),
    /// `~#`: list the open forwarded connections.
    ListConnections,
    /// Bytes to show locally: the `ssh>` prompt and the echo of its line.
    Echo(Vec<u8>),
    /// A line typed at `ssh>`, without its newline (raw bytes: the user's
    /// terminal may send anything).
    Command(Vec<u8>),
    /// `~R`: start a key re-exchange.
    Rekey,
    /// `~v` (`more`) / `~V`: raise or lower the log level.
    LogLevel { more: bool },
    /// `~B`: send a BREAK to the remote side.
    Break,
    /// `~^Z`: suspend this process.
    Suspend,
}

#[derive(Debug)]
enum State {
    /// Passing bytes through; `at_line_start` arms the escape character.
    Normal { at_line_start: bool },
    /// The escape character was typed at a line start.
    Pending,
    /// Editing the `ssh>` line.
    CommandLine(Vec<u8>),
}

/// Tracks line starts, a pending escape character and the `ssh>` line.
#[derive(Debug)]
pub struct EscapeFilter {
    escape: u8,
    state: State,
}

impl EscapeFilter {
    pub fn new(escape: u8) -> Self {
        EscapeFilter {
            escape,
            state: State::Normal {
                at_line_start: true,
            },
        }
    }

    /// Filters one chunk of input.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, Vec<EscapeAction>) {
        let mut out = Vec::with_capacity(input.len());
        let mut actions = Vec::new();
        for &b in input {
            match std::mem::replace(&mut self.state, State::Pending) {
                State::Normal { at_line_start } if at_line_start && b == self.escape => {
                    self.state = State::Pending;
                }
                State::Normal { .. } => {
                    out.push(b);
                    self.state = State::Normal {
                        at_line_start: b == b'\r' || b == b'\n',
                    };
                }
                State::Pending => {
                    if self.escaped(b, &mut out, &mut actions) {
                        return (out, actions);
                    }
                }
                State::CommandLine(line) => self.edit(line, b, &mut actions),
            }
        }
        (out, actions)
    }

    /// The character after an escape; true when input ends here (`~.`).
    fn escaped(&mut self, b: u8, out: &mut Vec<u8>, actions: &mut Vec<EscapeAction>) -> bool {
        self.state = State::Normal {
            at_line_start: false,
        };
        let action = match b {
            b'.' => {
                actions.push(EscapeAction::Disconnect);
                return true;
            }
            b'?' => EscapeAction::Help(self.help()),
            b'#' => EscapeAction::ListConnections,
            b'R' => EscapeAction::Rekey,
            b'B' => EscapeAction::Break,
            b'v' => EscapeAction::LogLevel { more: true },
            b'V' => EscapeAction::LogLevel { more: false },
            // Ctrl-Z
            0x1a => EscapeAction::Suspend,
            b'C' => {
                self.state = State::CommandLine(Vec::new());
                EscapeAction::Echo(b"\r\nssh> ".to_vec())
            }
            b if b == self.escape => {
                out.push(b);
                return false;
            }
            _ => {
                out.push(self.escape);
                out.push(b);
                self.state = State::Normal {
                    at_line_start: b == b'\r' || b == b'\n',
                };
                return false;
            }
        };
        actions.push(action);
        false
    }

    /// One byte typed at the `ssh>` prompt.
    fn edit(&mut self, mut line: Vec<u8>, b: u8, actions: &mut Vec<EscapeAction>) {
        match b {
            b'\r' | b'\n' => {
                actions.push(EscapeAction::Echo(b"\r\n".to_vec()));
                actions.push(EscapeAction::Command(line));
                // ssh's next escape needs a newline first, as after `~C`.
                self.state = State::Normal {
                    at_line_start: true,
                };
                return;
            }
            // Backspace or DEL: rub out one byte.
            0x08 | 0x7f if !line.is_empty() => {
                line.pop();
                actions.push(EscapeAction::Echo(b"\x08 \x08".to_vec()));
            }
            // Ctrl-C, Ctrl-U or ESC: give up on the line.
            0x03 | 0x15 | 0x1b => {
                actions.push(EscapeAction::Echo(b"\r\n".to_vec()));
                self.state = State::Normal {
                    at_line_start: true,
                };
                return;
            }
            0x20..=0x7e if line.len() < MAX_COMMAND_LINE => {
                line.push(b);
                actions.push(EscapeAction::Echo(vec![b]));
            }
            // Other control bytes and overlong lines are dropped.
            _ => {}
        }
        self.state = State::CommandLine(line);
    }

    fn help(&self) -> String {
        let e = self.escape as char;
        format!(
            "Supported escape sequences:\r\n \
             {e}.   - terminate connection\r\n \
             {e}B   - send a BREAK to the remote system\r\n \
             {e}C   - open a command line\r\n \
             {e}R   - request rekey\r\n \
             {e}V/v - decrease/increase verbosity (LogLevel)\r\n \
             {e}^Z  - suspend warren\r\n \
             {e}#   - list forwarded connections\r\n \
             {e}?   - this message\r\n \
             {e}{e}   - send the escape character by typing it twice\r\n\
             (Note that escapes are only recognized immediately after newline.)\r\n"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(input: &[u8]) -> (Vec<u8>, Vec<EscapeAction>) {
        EscapeFilter::new(b'~').feed(input)
    }

    #[test]
    fn escapes_only_at_line_start() {
        let cases: &[(&[u8], &[u8], usize)] = &[
            (b"ls\n~.", b"ls\n", 1),
            (b"a~.b", b"a~.b", 0),
            (b"~~x", b"~x", 0),
            (b"~x", b"~x", 0),
            (b"\r~?", b"\r", 1),
            (b"~#", b"", 1),
            (b"a~R", b"a~R", 0),
        ];
        for (input, want, n_actions) in cases {
            let (out, actions) = feed(input);
            let shown = String::from_utf8_lossy(input);
            assert_eq!(&out[..], *want, "input {shown:?}");
            assert_eq!(actions.len(), *n_actions, "input {shown:?}");
        }
    }

    #[test]
    fn each_escape_maps_to_its_action() {
        // Catches: ~R, ~B, ~v, ~V and ~^Z passed to the remote side as text.
        let cases: &[(&[u8], EscapeAction)] = &[
            (b"~R", EscapeAction::Rekey),
            (b"~B", EscapeAction::Break),
            (b"~v", EscapeAction::LogLevel { more: true }),
            (b"~V", EscapeAction::LogLevel { more: false }),
            (b"~\x1a", EscapeAction::Suspend),
        ];
        for (input, want) in cases {
            let (out, actions) = feed(input);
            assert!(out.is_empty(), "{input:?} sent {out:?}");
            assert_eq!(actions, vec![want.clone()], "{input:?}");
        }
    }

    #[test]
    fn command_line_is_edited_and_returned_whole() {
        // Catches: `~C` passed through, or its line sent to the remote side.
        let mut f = EscapeFilter::new(b'~');
        let (out, actions) = f.feed(b"~C-L 1:h:2x\x7f\r");
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(
            actions.last(),
            Some(&EscapeAction::Command(b"-L 1:h:2".to_vec()))
        );
        assert_eq!(actions[0], EscapeAction::Echo(b"\r\nssh> ".to_vec()));
        // After the line, a new escape is recognised at once.
        assert_eq!(f.feed(b"~.").1, vec![EscapeAction::Disconnect]);
    }

    #[test]
    fn command_line_is_bounded_and_cancellable() {
        let mut f = EscapeFilter::new(b'~');
        let long = vec![b'x'; MAX_COMMAND_LINE * 2];
        f.feed(b"~C");
        f.feed(&long);
        let (_, actions) = f.feed(b"\n");
        let Some(EscapeAction::Command(line)) = actions.last() else {
            panic!("no command: {actions:?}");
        };
        assert_eq!(line.len(), MAX_COMMAND_LINE);
        let (out, actions) = f.feed(b"~C-L\x03ls");
        assert_eq!(out, b"ls");
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, EscapeAction::Command(_)))
        );
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
