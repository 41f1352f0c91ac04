//! `%` tokens, `${ENV}` and `~` expansion (`misc.c` `percent_expand`,
//! `dollar_expand`, `tilde_expand`), and the token set a connection uses.
//!
//! Design choice: each keyword chooses which expansions apply at the call
//! site, exactly where ssh.c applies them; this module only knows how, not
//! when. Unknown tokens and unset variables are errors, as in OpenSSH.

use crate::env::Environment;
use crate::error::ConfigError;
use crate::sha1::sha1_hex;

/// Why an expansion failed, in OpenSSH's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    UnknownKey(char),
    InvalidFormat,
    UnclosedVariable(String),
    EmptyVariable,
    UnsetVariable(String),
}

impl ExpandError {
    pub(crate) fn into_config_error(self) -> ConfigError {
        let message = match self {
            Self::UnknownKey(c) => format!("percent_expand: unknown key %{c}"),
            Self::InvalidFormat => "percent_expand: invalid format".to_owned(),
            Self::UnclosedVariable(v) => format!("environment variable '{v}' missing closing '}}'"),
            Self::EmptyVariable => "zero-length environment variable".to_owned(),
            Self::UnsetVariable(v) => {
                format!("env var ${{{v}}} has no value: invalid environment variable expansion")
            }
        };
        ConfigError::Expand(message)
    }
}

/// Expand `%x` tokens from `tokens` (and `%%`).
pub(crate) fn percent_expand(s: &str, tokens: &[(char, &str)]) -> Result<String, ExpandError> {
    expand(s, Some(tokens), None)
}

/// Expand `${VAR}` only.
pub(crate) fn dollar_expand(s: &str, env: &dyn Environment) -> Result<String, ExpandError> {
    expand(s, None, Some(env))
}

/// Expand both `%x` tokens and `${VAR}`.
pub(crate) fn percent_dollar_expand(
    s: &str,
    tokens: &[(char, &str)],
    env: &dyn Environment,
) -> Result<String, ExpandError> {
    expand(s, Some(tokens), Some(env))
}

fn expand(
    s: &str,
    tokens: Option<&[(char, &str)]>,
    env: Option<&dyn Environment>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(s.len());
    let mut missing = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let (Some(env), Some(var_start)) = (env, rest.strip_prefix("${")) {
            let end = var_start
                .find('}')
                .ok_or_else(|| ExpandError::UnclosedVariable(var_start.to_owned()))?;
            let name = &var_start[..end];
            if name.is_empty() {
                return Err(ExpandError::EmptyVariable);
            }
            match env.env_var(name) {
                Some(value) => out.push_str(&value),
                None => missing = Some(name.to_owned()),
            }
            rest = &var_start[end + 1..];
            continue;
        }
        rest = &rest[c.len_utf8()..];
        let Some(tokens) = tokens.filter(|_| c == '%') else {
            out.push(c);
            continue;
        };
        let key = rest.chars().next().ok_or(ExpandError::InvalidFormat)?;
        rest = &rest[key.len_utf8()..];
        if key == '%' {
            out.push('%');
            continue;
        }
        let value = tokens
            .iter()
            .find(|(k, _)| *k == key)
            .ok_or(ExpandError::UnknownKey(key))?;
        out.push_str(value.1);
    }
    match missing {
        Some(name) => Err(ExpandError::UnsetVariable(name)),
        None => Ok(out),
    }
}

/// OpenSSH's `tilde_expand`: `~`, `~/path`, `~user`, `~user/path`.
pub(crate) fn tilde_expand(path: &str, env: &dyn Environment) -> Result<String, ConfigError> {
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(path.to_owned());
    };
    let (home, tail) = match rest.strip_prefix('/') {
        Some(tail) => (env.home_dir(), tail),
        None if rest.is_empty() => (env.home_dir(), ""),
        None => {
            let (user, tail) = rest.split_once('/').unwrap_or((rest, ""));
            let home = env
                .user_home(user)
                .ok_or_else(|| ConfigError::Expand(format!("tilde_expand: No such user {user}")))?;
            (home, tail)
        }
    };
    let home = home.to_string_lossy().into_owned();
    let slash = if home.ends_with('/') { "" } else { "/" };
    Ok(format!("{home}{slash}{}", tail.trim_start_matches('/')))
}

/// The values behind the client's `%` tokens (ssh.c's `ssh_conn_info`).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnInfo {
    pub(crate) conn_hash: String,
    pub(crate) short_host: String,
    pub(crate) uid: String,
    pub(crate) key_alias: String,
    pub(crate) this_host: String,
    pub(crate) host_arg: String,
    pub(crate) port: String,
    pub(crate) home_dir: String,
    pub(crate) remote_host: String,
    pub(crate) remote_user: String,
    pub(crate) local_user: String,
}

impl ConnInfo {
    /// `DEFAULT_CLIENT_PERCENT_EXPAND_ARGS`: %C %L %i %k %l %n %p %d %h %r %u.
    pub(crate) fn tokens(&self) -> [(char, &str); 11] {
        [
            ('C', &self.conn_hash),
            ('L', &self.short_host),
            ('i', &self.uid),
            ('k', &self.key_alias),
            ('l', &self.this_host),
            ('n', &self.host_arg),
            ('p', &self.port),
            ('d', &self.home_dir),
            ('h', &self.remote_host),
            ('r', &self.remote_user),
            ('u', &self.local_user),
        ]
    }
}

/// `%C`: SHA-1 of local host name, remote host, port and remote user
/// (OpenSSH 9.2 does not include `%j`).
pub(crate) fn connection_hash(this_host: &str, host: &str, port: &str, user: &str) -> String {
    sha1_hex(format!("{this_host}{host}{port}{user}").as_bytes())
}

/// The first component of a host name (`%L`).
pub(crate) fn short_hostname(full: &str) -> &str {
    full.split('.').next().unwrap_or(full)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::FakeEnv;

    #[test]
    fn percent_tokens() {
        let t = [('h', "example.com"), ('p', "22")];
        let cases = [
            ("%h:%p", Ok("example.com:22".to_owned())),
            ("100%%", Ok("100%".to_owned())),
            ("%x", Err(ExpandError::UnknownKey('x'))),
            ("trailing%", Err(ExpandError::InvalidFormat)),
            ("${HOME}", Ok("${HOME}".to_owned())),
        ];
        for (input, want) in cases {
            assert_eq!(percent_expand(input, &t), want, "{input:?}");
        }
    }

    #[test]
    fn dollar_variables() {
        let env = FakeEnv::default().var("SOCK", "/run/agent");
        let cases = [
            ("${SOCK}/x", Ok("/run/agent/x".to_owned())),
            ("$SOCK", Ok("$SOCK".to_owned())),
            ("%h${SOCK}", Ok("%h/run/agent".to_owned())),
            (
                "${NOPE}",
                Err(ExpandError::UnsetVariable("NOPE".to_owned())),
            ),
            ("${}", Err(ExpandError::EmptyVariable)),
            (
                "${SOCK",
                Err(ExpandError::UnclosedVariable("SOCK".to_owned())),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(dollar_expand(input, &env), want, "{input:?}");
        }
        assert_eq!(
            percent_dollar_expand("%h${SOCK}", &[('h', "H")], &env),
            Ok("H/run/agent".into())
        );
    }

    #[test]
    fn tilde() {
        let env = FakeEnv::default();
        let cases = [
            ("~", "/home/me/"),
            ("~/", "/home/me/"),
            ("~//.ssh/x", "/home/me/.ssh/x"),
            ("~/.ssh/id", "/home/me/.ssh/id"),
            ("~other/k", "/home/other/k"),
            ("/abs", "/abs"),
            ("rel~", "rel~"),
        ];
        for (input, want) in cases {
            assert_eq!(
                tilde_expand(input, &env).ok().as_deref(),
                Some(want),
                "{input:?}"
            );
        }
        assert!(tilde_expand("~nobody/x", &env).is_err());
    }

    #[test]
    fn connection_hash_matches_openssh() {
        // printf '%s' 'myhostexample.com22me' | sha1sum
        assert_eq!(
            connection_hash("myhost", "example.com", "22", "me"),
            "a76a131bf15bcddf3928e5961308910f3e1ca46a"
        );
        assert_eq!(short_hostname("a.b.c"), "a");
    }
}
