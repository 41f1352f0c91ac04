//! An error and its causes on one line, the way `warren: ...` reports them.
//!
//! Design choice: each error type says its own context once and leaves its
//! cause to `source()`, so a report walks the chain. A cause whose text the
//! line already ends with (a foreign type that repeats its source in its
//! message) is skipped, so nothing is ever said twice.

use std::error::Error;
use std::fmt;

/// Displays `err: cause: cause of cause`, each part once.
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            let text = cause.to_string();
            if !text.is_empty() && !said.ends_with(&text) {
                write!(f, ": {text}")?;
                said.push_str(": ");
                said.push_str(&text);
            }
            next = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);

    impl fmt::Display for E {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn chain(parts: &[&'static str]) -> E {
        parts
            .iter()
            .rev()
            .fold(None, |inner, p| Some(E(p, inner.map(Box::new))))
            .expect("at least one part")
    }

    #[test]
    fn each_part_once_even_when_a_message_repeats_its_cause() {
        let cases: &[(&[&'static str], &str)] = &[
            (&["a"], "a"),
            (&["a", "b", "c"], "a: b: c"),
            // A message that already printed its source: `X: X` is said once.
            (&["Broken pipe", "Broken pipe"], "Broken pipe"),
            (&["open f: denied", "denied"], "open f: denied"),
            (&["a", "", "b"], "a: b"),
        ];
        for (parts, want) in cases {
            assert_eq!(Chain(&chain(parts)).to_string(), *want, "{parts:?}");
        }
    }
}
