//! KnownHostsCommand as ssh runs it (`sshconnect.c`
//! `load_hostkeys_command`): the template split like a command line, then
//! each argument after the first expanded with the client's tokens, the
//! lookup's own (`%H %I %t %f %K`) and `${ENV}`.
//!
//! Design choice: the template and the connection's token values are kept
//! together, and the argv is made only when the engine knows which lookup
//! it is for (ORDER before the key exchange, HOSTNAME / ADDRESS with the
//! server's key); this crate runs nothing.

use crate::env::Environment;
use crate::error::ConfigError;
use crate::expand::{ConnInfo, percent_dollar_expand};
use crate::lexer::argv_split_all;

/// KnownHostsCommand, ready to be expanded for one lookup.
#[derive(Debug, Clone)]
pub struct KnownHostsCommand {
    template: String,
    conn: ConnInfo,
}

/// The server's host key as the `%t %f %K` tokens show it.
#[derive(Debug, Clone, Copy)]
pub struct PresentedKey<'a> {
    /// `%t`: the key's SSH name (`ssh-ed25519`, `ssh-rsa-cert-v01@openssh.com`).
    pub name: &'a str,
    /// `%f`: its fingerprint as FingerprintHash prints it (`SHA256:...`).
    pub fingerprint: &'a str,
    /// `%K`: its base64 blob.
    pub base64: &'a str,
}

impl KnownHostsCommand {
    pub(crate) fn new(template: String, conn: ConnInfo) -> Self {
        Self { template, conn }
    }

    /// The command as configured.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The argument vector for one lookup: `invocation` is `ORDER`,
    /// `HOSTNAME` or `ADDRESS` (`%I`), `lookup_name` the name known_hosts
    /// lines must match (`%H`), `key` the server's key (absent for ORDER:
    /// the tokens are then `NONE`). The first word is not expanded, as in
    /// ssh.
    pub fn argv(
        &self,
        invocation: &str,
        lookup_name: &str,
        key: Option<PresentedKey<'_>>,
        env: &dyn Environment,
    ) -> Result<Vec<String>, ConfigError> {
        let tag = format!("KnownHostsCommand-{invocation}");
        let mut words = argv_split_all(&self.template).map_err(|()| {
            ConfigError::Invalid(format!(
                "{tag} \"{}\" contains invalid quotes",
                self.template
            ))
        })?;
        if words.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{tag} \"{}\" yielded no arguments",
                self.template
            )));
        }
        let mut tokens = self.conn.tokens().to_vec();
        tokens.extend([
            ('H', lookup_name),
            ('I', invocation),
            ('t', key.map_or("NONE", |k| k.name)),
            ('f', key.map_or("NONE", |k| k.fingerprint)),
            ('K', key.map_or("NONE", |k| k.base64)),
        ]);
        for word in words.iter_mut().skip(1) {
            *word = percent_dollar_expand(word, &tokens, env).map_err(|e| e.into_config_error())?;
        }
        Ok(words)
    }
}

#[cfg(test)]
mod tests {
    use crate::env::harness::run_in;
    use crate::env::tests::FakeEnv;

    use super::PresentedKey;

    fn argv(config: &str, invocation: &str, key: bool) -> Result<Vec<String>, String> {
        let env = FakeEnv::default();
        let c = run_in(FakeEnv::default(), config, "h", &[]).map_err(|e| e.to_string())?;
        let command = c
            .known_hosts_command()
            .ok_or_else(|| "no command".to_owned())?;
        let key = key.then_some(PresentedKey {
            name: "ssh-ed25519",
            fingerprint: "SHA256:abc",
            base64: "AAAA",
        });
        command
            .argv(invocation, "[h]:2222", key, &env)
            .map_err(|e| e.to_string())
    }

    /// Config, invocation, whether the key is known, and the argv or error.
    type Case = (
        &'static str,
        &'static str,
        bool,
        Result<Vec<String>, String>,
    );

    /// Each lookup's tokens, as ssh_config(5) lists them for the keyword.
    #[test]
    fn known_hosts_command_tokens() {
        let s = |v: &[&str]| Ok(v.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>());
        let cases: Vec<Case> = vec![
            (
                "Port 2222\nUser u\nKnownHostsCommand /kh %H %I %t %f %K %h %p %r %n %%",
                "HOSTNAME",
                true,
                s(&[
                    "/kh",
                    "[h]:2222",
                    "HOSTNAME",
                    "ssh-ed25519",
                    "SHA256:abc",
                    "AAAA",
                    "h",
                    "2222",
                    "u",
                    "h",
                    "%",
                ]),
            ),
            (
                "KnownHostsCommand /kh %I %t %f %K",
                "ORDER",
                false,
                s(&["/kh", "ORDER", "NONE", "NONE", "NONE"]),
            ),
            // The first word is the program, as written.
            (
                "KnownHostsCommand /kh%h 'a b' \"%h c\"",
                "ORDER",
                false,
                s(&["/kh%h", "a b", "h c"]),
            ),
            (
                "KnownHostsCommand /kh %D",
                "ORDER",
                false,
                Err("percent_expand: unknown key %D".to_owned()),
            ),
        ];
        for (config, invocation, key, want) in cases {
            assert_eq!(argv(config, invocation, key), want, "{config}");
        }
    }
}
