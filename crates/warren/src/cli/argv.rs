//! ssh's argument order rules, which clap cannot express: options may also
//! follow the destination (`ssh host -p 2222 cmd`), and the first non-option
//! after the destination starts the command, whose own dashes are its own.
//!
//! `reorder` rewrites argv into `options... -- destination command...` so
//! clap parses it with a plain positional destination and command;
//! `options_in_order` lists the options as ssh's getopt returns them, in
//! every spelling (`-p1`, `-p 1`, `-oUser=x`, `-vvp1`), and where the
//! destination stood among them: ssh applies each one, and the
//! destination's `user@` and `:port`, in that order.

use super::ssh_flags::takes_value;

/// Splits `args` (after `warren ssh`) into options then `--`, destination
/// and command. Unknown letters are left for clap to report.
pub fn reorder(args: &[String]) -> Vec<String> {
    reorder_marking_destination(args).0
}

/// Like [`reorder`], and also how many of the reordered arguments were
/// typed before the destination: options after it apply after it (for
/// `-l`, `user@host` wins only when it comes first).
pub fn reorder_marking_destination(args: &[String]) -> (Vec<String>, usize) {
    let (mut options, positional, before) = split(args);
    options.push("--".to_owned());
    options.extend(positional);
    (options, before)
}

/// The option words, the destination and command words, and how many
/// option words were typed before the destination.
fn split(args: &[String]) -> (Vec<String>, Vec<String>, usize) {
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
    (options, positional, before)
}

/// One option as getopt returns it: the letter and its value, if it takes one.
pub type Opt = (char, Option<String>);

/// The options of `args` in the order ssh's getopt returns them, and how
/// many of them came before the destination.
pub fn options_in_order(args: &[String]) -> (Vec<Opt>, usize) {
    let (option_words, _, before_words) = split(args);
    let mut out = Vec::new();
    let mut before = None;
    let mut words = option_words.iter().enumerate();
    while let Some((index, word)) = words.next() {
        if index >= before_words {
            before.get_or_insert(out.len());
        }
        for (pos, letter) in word.char_indices().skip(1) {
            if takes_value(letter) != Some(true) {
                out.push((letter, None));
                continue;
            }
            let attached = &word[pos + letter.len_utf8()..];
            let value = if attached.is_empty() {
                // The value is the next word (reorder kept it there).
                words.next().map(|(_, v)| v.clone())
            } else {
                Some(attached.to_owned())
            };
            out.push((letter, value));
            break;
        }
    }
    let before = before.unwrap_or(out.len());
    (out, before)
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

    /// Every spelling gives the same options, and the destination's place
    /// among them counts options, not words (`-oUser=x` and `-o User=x`
    /// are one option each; clap's indices counted them differently).
    #[test]
    fn options_in_order_table() {
        let o = |l: char, v: Option<&str>| (l, v.map(str::to_owned));
        let cases: Vec<(&str, Vec<Opt>, usize)> = vec![
            ("host", vec![], 0),
            ("-oUser=foo baz@h", vec![o('o', Some("User=foo"))], 1),
            ("-o User=foo baz@h", vec![o('o', Some("User=foo"))], 1),
            ("-lbar baz@h", vec![o('l', Some("bar"))], 1),
            ("-p1 ssh://h:5", vec![o('p', Some("1"))], 1),
            (
                "-vvp1 -G h -l x",
                vec![
                    o('v', None),
                    o('v', None),
                    o('p', Some("1")),
                    o('G', None),
                    o('l', Some("x")),
                ],
                4,
            ),
            ("-p 1 -p 2 h", vec![o('p', Some("1")), o('p', Some("2"))], 2),
            ("h -p 3 ls -p 4", vec![o('p', Some("3"))], 0),
            (
                "-fNL5432:db:5432 h",
                vec![o('f', None), o('N', None), o('L', Some("5432:db:5432"))],
                3,
            ),
            ("-- h -p 1", vec![], 0),
            ("-p", vec![o('p', None)], 1),
        ];
        for (line, want, before) in cases {
            let args: Vec<String> = line.split_whitespace().map(String::from).collect();
            assert_eq!(options_in_order(&args), (want, before), "argv: {line}");
        }
    }
}
