//! Authentication commands of a client connection.

use super::super::userauth::AuthStatus;
use super::Connection;
use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, ErrorKind, Result};

impl Connection {
    /// Where authentication stands.
    pub fn auth_status(&self) -> &AuthStatus {
        &self.auth.status
    }

    /// The userauth banner the server sent, if any.
    pub fn banner(&self) -> Option<&str> {
        self.auth.banner.as_deref()
    }

    /// The user name of the last authentication request.
    pub fn username(&self) -> &str {
        &self.auth.username
    }

    /// Sends a "none" request (learns the methods the server allows).
    pub fn auth_none(&mut self, user: &str) -> Result<()> {
        self.check_alive()?;
        let p = self.auth.none(user)?;
        self.send(p);
        Ok(())
    }

    /// Sends a password request.
    pub fn auth_password(&mut self, user: &str, password: &str) -> Result<()> {
        self.check_alive()?;
        let p = self.auth.password(user, password)?;
        self.send(p.to_vec());
        Ok(())
    }

    /// Sends a signed publickey request, choosing the signature algorithm the server
    /// announced in server-sig-algs (for RSA: rsa-sha2-512, then -256, else ssh-rsa).
    pub fn auth_publickey(&mut self, user: &str, key: &PrivateKey) -> Result<()> {
        self.check_alive()?;
        let session_id = self
            .kex
            .session_id
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::State, "no session yet"))?;
        let algorithm = self.signature_algorithm(&key.public_key());
        let p = self.auth.publickey(user, key, algorithm, &session_id)?;
        self.send(p);
        Ok(())
    }

    fn signature_algorithm(&self, key: &PublicKey) -> &'static str {
        let candidates = key.signature_algorithms(true);
        let modern = key.signature_algorithms(false);
        let first = modern.first().copied().unwrap_or(key.key_type());
        match &self.server_sig_algs {
            Some(server) => candidates
                .into_iter()
                .find(|a| server.iter().any(|s| s == a))
                .unwrap_or(first),
            None if key.key_type() == "ssh-rsa" && candidates.contains(&"ssh-rsa") => "ssh-rsa",
            None => first,
        }
    }

    /// Starts keyboard-interactive authentication.
    pub fn auth_keyboard_interactive(&mut self, user: &str) -> Result<()> {
        self.check_alive()?;
        let p = self.auth.keyboard_interactive(user)?;
        self.send(p);
        Ok(())
    }

    /// Answers the keyboard-interactive prompts in [`AuthStatus::InfoRequest`].
    pub fn auth_info_response(&mut self, answers: &[String]) -> Result<()> {
        self.check_alive()?;
        let p = self.auth.info_response(answers)?;
        self.send(p.to_vec());
        Ok(())
    }
}
