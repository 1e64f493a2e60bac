//! User authentication, server side (RFC 4252, RFC 4256): requests parsed and checked here,
//! signatures verified here, verdicts left to the application. The user name may not change
//! between attempts, failures are counted, and the connection is cut after too many.

use zeroize::Zeroizing;

use super::super::msg;
use super::super::packet::ReaderChange;
use super::super::server::{AuthAnswer, AuthRequest, AuthResult, InteractiveQuery, ServerEvent};
use super::super::userauth::publickey_signed_data;
use super::decisions::Pending;
use super::server::lossy_utf8;
use super::Connection;
use crate::keys::PublicKey;
use crate::log::Level;
use crate::wire::{Reader, Writer};
use crate::{Error, ErrorKind, Result};

/// Prompts or answers in one keyboard-interactive round beyond which a peer is abusive.
const MAX_PROMPTS: u32 = 64;
/// Failed attempts allowed unless set otherwise (OpenSSH's MaxAuthTries).
const DEFAULT_MAX_TRIES: u32 = 6;
/// Disconnect reason when the attempts are used up (RFC 4250 §4.2.2).
const NO_MORE_AUTH_METHODS_AVAILABLE: u32 = 14;

/// Where a client's authentication stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// Waiting for SERVICE_REQUEST "ssh-userauth".
    AwaitService,
    /// Ready for a USERAUTH_REQUEST.
    Ready,
    /// Keyboard-interactive prompts are out; `prompts` answers are due.
    Interactive {
        prompts: u32,
    },
    Success,
}

/// The authentication request whose verdict the application owes.
#[derive(Debug, Clone)]
pub(super) enum PendingAuth {
    None,
    Password,
    /// A publickey query without signature: the answer is PK_OK or a refusal.
    PublicKeyQuery {
        algorithm: String,
        blob: Vec<u8>,
    },
    /// A publickey request whose signature we verified.
    PublicKey(Box<PublicKey>),
    Interactive,
}

/// Server authentication state.
#[derive(Debug)]
pub(super) struct ServerAuth {
    pub stage: Stage,
    /// Fixed by the first request.
    pub username: Option<String>,
    pub failures: u32,
    pub max_tries: u32,
    pub banner: Option<String>,
    banner_sent: bool,
    pub authenticated_key: Option<PublicKey>,
    /// The methods the application last said may continue.
    allowed: Option<String>,
    /// "none" requests so far; only the first is free.
    pub nones: u32,
}

impl Default for ServerAuth {
    fn default() -> Self {
        ServerAuth {
            stage: Stage::AwaitService,
            username: None,
            failures: 0,
            max_tries: DEFAULT_MAX_TRIES,
            banner: None,
            banner_sent: false,
            authenticated_key: None,
            allowed: None,
            nones: 0,
        }
    }
}

impl ServerAuth {
    pub fn on_service_request(&mut self) {
        if self.stage == Stage::AwaitService {
            self.stage = Stage::Ready;
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.stage == Stage::Success
    }
}

impl Connection {
    pub(super) fn on_userauth_request(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let user = std::str::from_utf8(r.string("user name")?)
            .map_err(|_| Error::protocol("user name is not UTF-8"))?
            .to_owned();
        let service = r.string("service name")?;
        let method = r.string("method name")?;
        if service != b"ssh-connection" {
            return Err(Error::protocol(format!(
                "authentication for unknown service {}",
                lossy_utf8(service)
            )));
        }
        let state = self.server_state()?;
        match &state.auth.username {
            Some(first) if *first != user => {
                return Err(Error::protocol(format!(
                    "change of user name not allowed ({first} to {user})"
                )))
            }
            Some(_) => {}
            None => state.auth.username = Some(user.clone()),
        }
        state.auth.stage = Stage::Ready;
        self.send_banner_once()?;
        let request = match method {
            b"none" => {
                self.server_state()?.auth.nones += 1;
                Some((AuthRequest::None, PendingAuth::None))
            }
            b"password" => {
                let change = r.bool("password change flag")?;
                let password = Zeroizing::new(lossy_utf8(r.string("password")?));
                (!change).then_some((AuthRequest::Password(password), PendingAuth::Password))
            }
            b"publickey" => self.publickey_request(&user, &mut r)?,
            b"keyboard-interactive" => {
                r.string("language tag")?;
                let submethods = lossy_utf8(r.string("submethods")?);
                Some((
                    AuthRequest::KeyboardInteractive { submethods },
                    PendingAuth::Interactive,
                ))
            }
            _ => None,
        };
        match request {
            Some((request, pending)) => {
                self.raise(ServerEvent::Auth { user, request }, Pending::Auth(pending))
            }
            None => {
                let method = lossy_utf8(method);
                self.log(Level::Info, || format!("refusing {method} for {user}"));
                let methods = self.last_methods();
                self.refuse_auth(&methods, true)
            }
        }
    }

    /// Checks a publickey request; a signed one must carry a valid signature before the
    /// application hears of it. None refuses it outright.
    fn publickey_request(
        &mut self,
        user: &str,
        r: &mut Reader<'_>,
    ) -> Result<Option<(AuthRequest, PendingAuth)>> {
        let signed = r.bool("publickey signature flag")?;
        let algorithm = lossy_utf8(r.string("public key algorithm")?);
        let blob = r.string("public key blob")?.to_vec();
        let accepted = self
            .server
            .as_ref()
            .is_some_and(|s| s.user_sig_algs.iter().any(|a| *a == algorithm));
        let key = match PublicKey::from_blob(&blob) {
            Ok(key) if accepted && key.signature_algorithms(true).contains(&algorithm.as_str()) => {
                key
            }
            _ => return Ok(None),
        };
        if !signed {
            let request = AuthRequest::PublicKey {
                key: Box::new(key),
                signature_verified: false,
            };
            return Ok(Some((
                request,
                PendingAuth::PublicKeyQuery { algorithm, blob },
            )));
        }
        let signature = r.string("signature")?;
        let session_id = self
            .kex
            .session_id
            .as_deref()
            .ok_or_else(|| Error::protocol("authentication before key exchange"))?;
        let data = publickey_signed_data(session_id, user, &algorithm, &blob);
        if let Err(e) = key.verify(&algorithm, &data, signature) {
            let why = e.message().to_owned();
            self.log(Level::Info, || format!("bad publickey signature: {why}"));
            return Ok(None);
        }
        let request = AuthRequest::PublicKey {
            key: Box::new(key.clone()),
            signature_verified: true,
        };
        Ok(Some((request, PendingAuth::PublicKey(Box::new(key)))))
    }

    pub(super) fn on_info_response(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(payload);
        r.u8("message number")?;
        let count = r.u32("number of responses")?;
        let state = self.server_state()?;
        let Stage::Interactive { prompts } = state.auth.stage else {
            return Err(Error::protocol("USERAUTH_INFO_RESPONSE without a request"));
        };
        if count != prompts || count > MAX_PROMPTS {
            return Err(Error::protocol(format!(
                "{count} keyboard-interactive answers to {prompts} prompts"
            )));
        }
        // count is at most MAX_PROMPTS: the vector never grows, so no answer is left behind
        // in a freed buffer.
        let mut answers = Zeroizing::new(Vec::with_capacity(count as usize));
        for _ in 0..count {
            answers.push(lossy_utf8(r.string("response")?));
        }
        state.auth.stage = Stage::Ready;
        let user = state.auth.username.clone().unwrap_or_default();
        self.raise(
            ServerEvent::Auth {
                user,
                request: AuthRequest::InfoResponse(answers),
            },
            Pending::Auth(PendingAuth::Interactive),
        )
    }

    /// Server: the application's verdict on the authentication request it was asked about.
    /// The messages that waited for it are handled next.
    pub fn answer_auth(&mut self, answer: AuthAnswer) -> Result<()> {
        self.settle_auth(answer)?;
        self.release_waiting();
        Ok(())
    }

    fn settle_auth(&mut self, answer: AuthAnswer) -> Result<()> {
        let Some(pending) = self.server_state()?.decisions.auth.take() else {
            return Err(Error::new(
                ErrorKind::State,
                "no authentication request awaits an answer",
            ));
        };
        let (result, methods) = match answer {
            AuthAnswer::Query(query) if matches!(pending, PendingAuth::Interactive) => {
                return self.send_info_request(&query);
            }
            AuthAnswer::Query(_) => (AuthResult::Failed, self.last_methods()),
            AuthAnswer::Verdict {
                result,
                allowed_methods,
            } => {
                self.server_state()?.auth.allowed = Some(allowed_methods.clone());
                (result, allowed_methods)
            }
        };
        // As OpenSSH counts: refused key queries, and every "none" after the first.
        let counted = match &pending {
            PendingAuth::None => self.server_state()?.auth.nones > 1,
            _ => true,
        };
        match (pending, result) {
            (PendingAuth::PublicKeyQuery { .. }, AuthResult::Failed) => {
                self.refuse_auth(&methods, counted)
            }
            (PendingAuth::PublicKeyQuery { algorithm, blob }, _) => {
                let mut w = Writer::message(msg::USERAUTH_60);
                w.string(algorithm).string(blob);
                self.send(w.into_bytes());
                Ok(())
            }
            (pending, AuthResult::Success) => {
                self.accept_auth(pending);
                Ok(())
            }
            (pending, AuthResult::PartiallySuccessful) => {
                // A key that passed one factor is the key the user proved.
                if let PendingAuth::PublicKey(key) = pending {
                    self.server_state()?.auth.authenticated_key = Some(*key);
                }
                self.send_auth_failure(&methods, true);
                Ok(())
            }
            (_, AuthResult::Failed) => self.refuse_auth(&methods, counted),
        }
    }

    fn accept_auth(&mut self, pending: PendingAuth) {
        let Some(state) = self.server.as_mut() else {
            return;
        };
        state.auth.stage = Stage::Success;
        if let PendingAuth::PublicKey(key) = pending {
            state.auth.authenticated_key = Some(*key);
        }
        let user = state.auth.username.clone().unwrap_or_default();
        self.send(vec![msg::USERAUTH_SUCCESS]);
        // zlib@openssh.com starts with the packets after USERAUTH_SUCCESS, both ways.
        if std::mem::take(&mut self.compression_out_pending) {
            self.writer.set_compression(true);
        }
        if std::mem::take(&mut self.compression_in_pending) {
            self.reader.apply(ReaderChange::Compression(true));
        }
        self.log(Level::Info, || format!("authenticated {user}"));
    }

    /// Refuses an attempt; counted ones use up the allowance, then the connection ends.
    fn refuse_auth(&mut self, methods: &str, counted: bool) -> Result<()> {
        let state = self.server_state()?;
        if counted {
            state.auth.failures += 1;
        }
        // As OpenSSH: the last allowed failure is answered by DISCONNECT alone.
        if state.auth.failures < state.auth.max_tries {
            self.send_auth_failure(methods, false);
        } else {
            let e = Error::new(ErrorKind::AuthDenied, "too many authentication failures");
            self.queue_disconnect(NO_MORE_AUTH_METHODS_AVAILABLE, e.message());
            self.error = Some(e.clone());
            self.channels.close_all();
            return Err(e);
        }
        Ok(())
    }

    fn send_auth_failure(&mut self, methods: &str, partial: bool) {
        if let Some(state) = self.server.as_mut() {
            state.auth.stage = Stage::Ready;
        }
        let mut w = Writer::message(msg::USERAUTH_FAILURE);
        w.string(methods).bool(partial);
        self.send(w.into_bytes());
    }

    fn send_info_request(&mut self, query: &InteractiveQuery) -> Result<()> {
        let prompts = u32::try_from(query.prompts.len())
            .ok()
            .filter(|n| *n <= MAX_PROMPTS)
            .ok_or_else(|| Error::invalid_arg("too many keyboard-interactive prompts"))?;
        self.server_state()?.auth.stage = Stage::Interactive { prompts };
        let mut w = Writer::message(msg::USERAUTH_60);
        w.string(&query.name)
            .string(&query.instructions)
            .string("")
            .u32(prompts);
        for (prompt, echo) in &query.prompts {
            w.string(prompt).bool(*echo);
        }
        self.send(w.into_bytes());
        Ok(())
    }

    /// The method list for refusals the application was not asked about (a bad signature,
    /// an unknown method): what it said last, or every method before it said anything.
    fn last_methods(&self) -> String {
        self.server
            .as_ref()
            .and_then(|s| s.auth.allowed.clone())
            .unwrap_or_else(|| "publickey,password,keyboard-interactive".to_owned())
    }

    fn send_banner_once(&mut self) -> Result<()> {
        let state = self.server_state()?;
        if state.auth.banner_sent {
            return Ok(());
        }
        state.auth.banner_sent = true;
        if let Some(banner) = state.auth.banner.clone() {
            let mut w = Writer::message(msg::USERAUTH_BANNER);
            w.string(banner).string("");
            self.send(w.into_bytes());
        }
        Ok(())
    }
}
