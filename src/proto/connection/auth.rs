//! Authentication commands of a client connection.

use super::super::userauth::{publickey_signed_data, AuthStatus};
use super::Connection;
use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, ErrorKind, Result};

/// What an external signer must sign for a publickey request, and with which algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeySigning {
    /// The signature algorithm to use (and to name in the request).
    pub algorithm: &'static str,
    /// The bytes to sign.
    pub data: Vec<u8>,
}

impl Connection {
    /// Where authentication stands.
    pub fn auth_status(&self) -> &AuthStatus {
        &self.auth.status
    }

    /// The userauth banner the server sent, if any.
    pub fn banner(&self) -> Option<&str> {
        self.auth.banner.as_deref()
    }

    /// The user name of the last authentication request (a server: the client's).
    pub fn username(&self) -> &str {
        match &self.server {
            Some(server) => server.auth.username.as_deref().unwrap_or_default(),
            None => &self.auth.username,
        }
    }

    /// Sends a "none" request (learns the methods the server allows).
    pub fn auth_none(&mut self, user: &str) -> Result<()> {
        self.client_call()?;
        let p = self.auth.none(user)?;
        self.send(p);
        Ok(())
    }

    /// Sends a password request.
    pub fn auth_password(&mut self, user: &str, password: &str) -> Result<()> {
        self.client_call()?;
        let p = self.auth.password(user, password)?;
        self.send(p.to_vec());
        Ok(())
    }

    /// Signs and sends a publickey request with a private key held here.
    pub fn auth_publickey(&mut self, user: &str, key: &PrivateKey) -> Result<()> {
        let public = key.public_key();
        let signing = self.publickey_to_sign(user, &public)?;
        let signature = key.sign(signing.algorithm, &signing.data)?;
        self.auth_publickey_signed(user, signing.algorithm, public.as_blob(), &signature)
    }

    /// What a publickey signature for `key` must cover, for a signer outside the connection
    /// (an ssh-agent, a hardware token). The signature algorithm is the one the server
    /// announced in server-sig-algs (for RSA: rsa-sha2-512, then -256, else ssh-rsa).
    pub fn publickey_to_sign(&self, user: &str, key: &PublicKey) -> Result<PublicKeySigning> {
        self.client_call()?;
        self.check_alive()?;
        let session_id = self
            .kex
            .session_id
            .as_deref()
            .ok_or_else(|| Error::new(ErrorKind::State, "no session yet"))?;
        let algorithm = self.signature_algorithm(key);
        let data = publickey_signed_data(session_id, user, algorithm, key.as_blob());
        Ok(PublicKeySigning { algorithm, data })
    }

    /// The session identifier (the first exchange hash), once the first key exchange is done.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.kex.session_id.as_deref()
    }

    /// Sends a publickey request with a signature made over [`Self::publickey_to_sign`]'s data.
    pub fn auth_publickey_signed(
        &mut self,
        user: &str,
        algorithm: &str,
        blob: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        self.client_call()?;
        let p = self.auth.publickey(user, algorithm, blob, signature)?;
        self.send(p);
        Ok(())
    }

    /// The signature algorithm to use with `key` on this server: the first the key can make
    /// that the server announced in server-sig-algs (RSA without that list: ssh-rsa).
    pub fn signature_algorithm(&self, key: &PublicKey) -> &'static str {
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
        self.client_call()?;
        let p = self.auth.keyboard_interactive(user)?;
        self.send(p);
        Ok(())
    }

    /// Answers the keyboard-interactive prompts in [`AuthStatus::InfoRequest`].
    pub fn auth_info_response(&mut self, answers: &[String]) -> Result<()> {
        self.client_call()?;
        let p = self.auth.info_response(answers)?;
        self.send(p.to_vec());
        Ok(())
    }
}
