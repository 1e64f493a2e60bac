//! Client authentication: none, password, public key (a private key, a signer elsewhere, a
//! certificate, an ssh-agent) and keyboard-interactive. Each waits for the server's verdict;
//! a caller-driven transport returns "would block" and resumes on the repeated call.

use super::in_flight::InFlight;
use super::shared_connection::SharedConnection;
use super::{AuthDenied, Transport};
use crate::agent::Agent;
use crate::keys::{Certificate, PrivateKey, PublicKey};
use crate::proto::{AuthStatus, Connection, InfoRequest};
use crate::{Error, ErrorKind, Result};

impl Transport {
    /// After a refusal: the methods that can continue, and whether it was a partial success.
    pub fn auth_denied(&self) -> Option<AuthDenied> {
        let shared = self.shared().ok()?;
        let conn = shared.state.lock();
        match conn.auth_status() {
            AuthStatus::Failed { methods, partial } => Some(AuthDenied {
                methods: methods.clone(),
                partial: *partial,
            }),
            _ => None,
        }
    }

    /// The server's userauth banner, if it sent one.
    pub fn banner(&self) -> Option<String> {
        self.shared().ok()?.state.lock().banner().map(str::to_owned)
    }

    fn authenticate(&self, send: impl FnOnce(&mut Connection) -> Result<()>) -> Result<()> {
        self.authenticate_by(None, |shared| shared.with(send), |_| None)
    }

    /// Sends the request `send` makes once the server accepted the service, then waits for
    /// the verdict. When a caller-driven transport's last call left this request out, the
    /// repeat only waits.
    fn authenticate_by(
        &self,
        agent_identity: Option<usize>,
        send: impl FnOnce(&SharedConnection) -> Result<()>,
        on_info: impl FnMut(&InfoRequest) -> Option<Vec<String>>,
    ) -> Result<()> {
        let shared = self.shared()?;
        let op = InFlight::Auth { agent_identity };
        if self.in_flight.resume(|o| o == op)?.is_none() {
            // Would it block here, nothing was sent: the repeat starts over.
            self.await_service(&shared)?;
            send(&shared)?;
        }
        let result = self.await_auth_result(&shared, on_info);
        self.in_flight.settle(op, result)
    }

    /// Waits for the server's verdict; `on_info` answers keyboard-interactive rounds.
    fn await_auth_result(
        &self,
        shared: &SharedConnection,
        mut on_info: impl FnMut(&InfoRequest) -> Option<Vec<String>>,
    ) -> Result<()> {
        loop {
            let status = shared.wait(self.timeout(), "the authentication result", |c| {
                match c.auth_status() {
                    AuthStatus::Pending(_) => None,
                    s => Some(Ok(s.clone())),
                }
            })?;
            match status {
                AuthStatus::Success => return Ok(()),
                AuthStatus::Failed { methods, partial } => {
                    let verdict = if partial {
                        "partial success; more authentication required"
                    } else {
                        "permission denied"
                    };
                    return Err(Error::new(
                        ErrorKind::AuthDenied,
                        format!(
                            "authentication failed ({verdict}); methods that can continue: {}",
                            methods.join(",")
                        ),
                    ));
                }
                AuthStatus::InfoRequest(req) => {
                    let Some(answers) = on_info(&req) else {
                        return Err(Error::new(
                            ErrorKind::AuthDenied,
                            "keyboard-interactive authentication abandoned",
                        ));
                    };
                    shared.with(|c| c.auth_info_response(&answers))?;
                }
                AuthStatus::AwaitingService | AuthStatus::Ready | AuthStatus::Pending(_) => {
                    return Err(Error::new(ErrorKind::Internal, "authentication state lost"))
                }
            }
        }
    }

    /// "none" authentication: succeeds only on servers that need none; otherwise the
    /// refusal lists the methods to try.
    pub fn auth_none(&self, user: &str) -> Result<()> {
        self.authenticate(|c| c.auth_none(user))
    }

    /// Password authentication.
    pub fn auth_password(&self, user: &str, password: &str) -> Result<()> {
        self.authenticate(|c| c.auth_password(user, password))
    }

    /// Public key authentication with a private key.
    pub fn auth_publickey(&self, user: &str, key: &PrivateKey) -> Result<()> {
        self.authenticate(|c| c.auth_publickey(user, key))
    }

    /// Public key authentication where the private key lives elsewhere (an ssh-agent, a
    /// token): `sign(algorithm, data)` returns the SSH signature blob. It runs on the calling
    /// thread without any lock held, so it may do I/O.
    pub fn auth_publickey_with(
        &self,
        user: &str,
        key: &PublicKey,
        sign: impl FnOnce(&str, &[u8]) -> Result<Vec<u8>>,
    ) -> Result<()> {
        self.publickey_signed_by(None, user, key, sign)
    }

    fn publickey_signed_by(
        &self,
        agent_identity: Option<usize>,
        user: &str,
        key: &PublicKey,
        sign: impl FnOnce(&str, &[u8]) -> Result<Vec<u8>>,
    ) -> Result<()> {
        let send = |shared: &SharedConnection| {
            let signing = shared.with(|c| c.publickey_to_sign(user, key))?;
            let signature = sign(signing.algorithm, &signing.data)?;
            shared.with(|c| {
                c.auth_publickey_signed(user, signing.algorithm, key.as_blob(), &signature)
            })
        };
        self.authenticate_by(agent_identity, send, |_| None)
    }

    /// Public key authentication with an OpenSSH user certificate for `key`: the request
    /// names the certificate's algorithm and carries the certificate; `key` signs.
    pub fn auth_publickey_certificate(
        &self,
        user: &str,
        key: &PrivateKey,
        cert: &Certificate,
    ) -> Result<()> {
        if cert.public_key() != &key.public_key() {
            return Err(Error::invalid_arg("the certificate is not for this key"));
        }
        let send = |shared: &SharedConnection| {
            let (cert_algorithm, data, signature_algorithm) = shared.with(|c| {
                let wanted = c.signature_algorithm(cert.public_key());
                let pairs = cert.signature_algorithms(true);
                let (cert_alg, sig_alg) = pairs
                    .iter()
                    .find(|(_, sig)| *sig == wanted)
                    .or(pairs.first())
                    .copied()
                    .ok_or_else(|| Error::invalid_arg("certificate of an unsupported type"))?;
                let session_id = c
                    .session_id()
                    .ok_or_else(|| Error::new(ErrorKind::State, "no session yet"))?;
                let data = crate::proto::userauth::publickey_signed_data(
                    session_id,
                    user,
                    cert_alg,
                    cert.as_blob(),
                );
                Ok::<_, Error>((cert_alg, data, sig_alg))
            })?;
            let signature = key.sign(signature_algorithm, &data)?;
            shared
                .with(|c| c.auth_publickey_signed(user, cert_algorithm, cert.as_blob(), &signature))
        };
        self.authenticate_by(None, send, |_| None)
    }

    /// Public key authentication with the identities of an ssh-agent, tried in the agent's
    /// order until one is accepted. The agent signs; no private key passes through here.
    pub fn auth_agent(&self, user: &str, agent: &Agent) -> Result<()> {
        let identities = agent.identities()?;
        if identities.is_empty() {
            return Err(Error::new(
                ErrorKind::AuthDenied,
                "the ssh-agent holds no usable identities",
            ));
        }
        // A caller-driven repeat goes on with the identity whose request is out.
        let first = match self
            .in_flight
            .resume(|o| matches!(o, InFlight::Auth { .. }))?
        {
            Some(InFlight::Auth {
                agent_identity: Some(index),
            }) => index,
            _ => 0,
        };
        let mut last = None;
        for (index, identity) in identities.iter().enumerate().skip(first) {
            let sign = |algorithm: &str, data: &[u8]| {
                agent.sign_with_public_key(&identity.public, data, algorithm)
            };
            let result = self.publickey_signed_by(Some(index), user, &identity.public, sign);
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AuthDenied => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::new(ErrorKind::AuthDenied, "no agent identity was accepted")))
    }

    fn await_service(&self, shared: &SharedConnection) -> Result<()> {
        shared.wait(self.timeout(), "the server to accept authentication", |c| {
            (*c.auth_status() != AuthStatus::AwaitingService).then_some(Ok(()))
        })
    }

    /// Keyboard-interactive authentication; `answer` is called for each round of prompts on
    /// the calling thread and returns one answer per prompt, or `None` to give up.
    pub fn auth_interactive(
        &self,
        user: &str,
        answer: impl FnMut(&InfoRequest) -> Option<Vec<String>>,
    ) -> Result<()> {
        let send = |shared: &SharedConnection| shared.with(|c| c.auth_keyboard_interactive(user));
        self.authenticate_by(None, send, answer)
    }
}
