//! ssh's argument order rules, which clap cannot express: options may also
//! follow the destination (`ssh host -p 2222 cmd`), and the first non-option
//! after the destination starts the command, whose own dashes are its own.
//!
//! `reorder` rewrites argv into `options... -- destination command...` so
//! clap parses it with a plain positional destination and command.

/// ssh(1)'s getopt string (OpenSSH 9.2): a letter followed by ':' takes a value.
const OPTSTRING: &str = "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:P:Q:R:S:TVw:W:XYy";

fn takes_value(c: char) -> Option<bool> {
    let i = OPTSTRING.find(c)?;
    Some(OPTSTRING[i + c.len_utf8()..].starts_with(':'))
}

/// Splits `args` (after `warren ssh`) into options then `--`, destination
/// and command. Unknown letters are left for clap to report.
pub fn reorder(args: &[String]) -> Vec<String> {
    reorder_marking_destination(args).0
}

/// Like [`reorder`], and also how many of the reordered arguments were
/// typed before the destination: options after it apply after it (for
/// `-l`, `user@host` wins only when it comes first).
pub fn reorder_marking_destination(args: &[String]) -> (Vec<String>, usize) {
    let mut before_destination = None;
    let mut options = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            positional.extend(args[i + 1..].iter().cloned());
            break;
        }
        let is_option = a.starts_with('-') && a.len() > 1;
        if !is_option {
            before_destination.get_or_insert(options.len());
            positional.push(a.clone());
            if positional.len() == 2
                || (positional.len() == 1 && !more_options_follow(&args[i + 1..]))
            {
                // The command starts here: everything after is its own.
                positional.extend(args[i + 1..].iter().cloned());
                break;
            }
            i += 1;
            continue;
        }
        options.push(a.clone());
        // A cluster like -fNL5432:x:1 or -p 22: does the last letter need
        // the next argument?
        if needs_next(a) && i + 1 < args.len() {
            options.push(args[i + 1].clone());
            i += 1;
        }
        i += 1;
    }
    let before = before_destination.unwrap_or(options.len());
    options.push("--".to_owned());
    options.extend(positional);
    (options, before)
}

/// After the destination, options continue only while arguments start with
/// '-'; ssh restarts getopt there.
fn more_options_follow(rest: &[String]) -> bool {
    rest.first()
        .is_some_and(|a| a.starts_with('-') && a.len() > 1)
}

fn needs_next(cluster: &str) -> bool {
    for (pos, c) in cluster.char_indices().skip(1) {
        match takes_value(c) {
            Some(true) => return pos + c.len_utf8() == cluster.len(),
            Some(false) => continue,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> String {
        reorder(&s.split_whitespace().map(String::from).collect::<Vec<_>>()).join(" ")
    }

    #[test]
    fn reorder_table() {
        let cases = [
            ("host", "-- host"),
            ("-p 22 host", "-p 22 -- host"),
            ("-p22 host ls -la", "-p22 -- host ls -la"),
            ("host -p 2222 ls -la", "-p 2222 -- host ls -la"),
            ("host ls -p 2", "-- host ls -p 2"),
            ("-fNL 5432:db:5432 host", "-fNL 5432:db:5432 -- host"),
            ("-vvv -o Port=2 host", "-vvv -o Port=2 -- host"),
            ("-tt host -- cmd", "-tt -- host cmd"),
            ("-- host -p 1", "-- host -p 1"),
            ("-G -F none host", "-G -F none -- host"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "argv: {input}");
        }
    }
}
