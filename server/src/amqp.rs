//! The AMQP 0-9-1 transport: python-socketio servers scaled out through
//! RabbitMQ with `KombuManager` (and Flask-SocketIO's `message_queue =
//! 'amqp://…'`, which builds one) or `AsyncAioPikaManager`.
//!
//! Both managers declare a fanout exchange named after their `channel`
//! option (non-durable, not auto-deleted), give each server its own queue
//! bound to it, and publish every message of the python-socketio dialect
//! ([`crate::codec::python`]) as its JSON text to that exchange. The gateway
//! declares the same exchange (as a write-only `KombuManager` does) and
//! publishes the same bodies with the properties of the manager named by the
//! target's `amqp_publisher` option (docs/protocol.md §6.5).
//!
//! One connection and one channel per target, in confirm mode: a call is
//! OK only once the broker has acknowledged every message. Messages are
//! published `mandatory`, so the broker hands back one no queue took (no
//! server listening): its reply then counts 0 receivers, else 1. The link is
//! made on first use, bounded by the Redis timeout; after any failure it is
//! dropped and the next call (or health check) connects again, so the
//! target recovers by itself when the broker returns.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::{FieldTable, ShortString},
};
use serde::Deserialize;

use crate::error::Error;

/// Whose message properties the gateway copies: the two managers publish the
/// same body with different AMQP properties (docs/protocol.md §6.5). The
/// receivers of both read either; the option only makes the gateway's
/// messages indistinguishable from the servers' own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Publisher {
    /// `KombuManager` (kombu 5): routing key `""`, content type
    /// `text/plain`, encoding `utf-8`, persistent, priority 0, no headers.
    #[default]
    #[serde(rename = "kombu")]
    Kombu,
    /// `AsyncAioPikaManager` (aio-pika): routing key `*`, no content type,
    /// persistent, priority 0, no headers, a random `message_id`.
    #[serde(rename = "aio-pika")]
    AioPika,
}

/// A target's AMQP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmqpConfig {
    /// The broker (`amqp://` or `amqps://`).
    pub url: String,
    /// Whose message properties to copy.
    pub publisher: Publisher,
}

/// Why a target may not have both an AMQP broker and Redis settings.
pub const AMQP_OR_REDIS: &str = "a target reaches its servers either through Redis (redis_url, cluster, \
     sentinel_master) or through an AMQP broker (amqp_url), not both";

/// A target's AMQP settings from what its config entry (or the flags) set;
/// an error names the option (`amqp_url`, `amqp_publisher`) and why.
pub fn settings(
    dialect: crate::config::Dialect,
    url: Option<&str>,
    publisher: Option<Publisher>,
) -> Result<Option<AmqpConfig>, (&'static str, String)> {
    let Some(url) = url else {
        return match publisher {
            Some(_) => Err(("amqp_publisher", "needs amqp_url".to_owned())),
            None => Ok(None),
        };
    };
    if dialect != crate::config::Dialect::PythonSocketIo {
        return Err((
            "amqp_url",
            "only the python-socketio dialect has an AMQP transport (KombuManager, AsyncAioPikaManager): \
             set dialect = \"python-socketio\", or use redis_url"
                .to_owned(),
        ));
    }
    check_url(url).map_err(|e| ("amqp_url", e))?;
    Ok(Some(AmqpConfig {
        url: url.to_owned(),
        publisher: publisher.unwrap_or_default(),
    }))
}

/// Whether `url` is an AMQP URL the client accepts; the reason when not.
pub fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
        return Err(format!("{url:?} is not an amqp:// or amqps:// URL"));
    }
    url.parse::<lapin::uri::AMQPUri>()
        .map(|_| ())
        .map_err(|e| format!("{url:?} is not a valid AMQP URL: {e}"))
}

/// AMQP's `delivery_mode` 2: both managers publish persistent messages.
const PERSISTENT: u8 = 2;

/// The manager's exchange type (`type='fanout'`): every bound queue (one per
/// server) gets every message, whatever the routing key.
const EXCHANGE_KIND: ExchangeKind = ExchangeKind::Fanout;

/// The link of one target: a connection and its confirm-mode channel.
struct Link {
    connection: Connection,
    channel: Channel,
}

/// One target's broker.
pub struct AmqpBackend {
    target: String,
    url: String,
    exchange: String,
    publisher: Publisher,
    timeout: Duration,
    /// Held while connecting, so concurrent calls wait for one link.
    link: tokio::sync::Mutex<Option<Link>>,
}

impl std::fmt::Debug for AmqpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpBackend")
            .field("target", &self.target)
            .field("exchange", &self.exchange)
            .field("publisher", &self.publisher)
            .finish_non_exhaustive()
    }
}

impl AmqpBackend {
    /// The backend of target `target` publishing into `exchange` (the
    /// manager's `channel`); nothing connects until first use.
    pub fn new(target: &str, cfg: &AmqpConfig, exchange: &str, timeout: Duration) -> Result<Self, String> {
        check_url(&cfg.url)?;
        Ok(Self {
            target: target.to_owned(),
            url: cfg.url.clone(),
            exchange: exchange.to_owned(),
            publisher: cfg.publisher,
            timeout,
            link: tokio::sync::Mutex::new(None),
        })
    }

    fn unavailable(&self, reason: impl std::fmt::Display) -> Error {
        Error::BrokerUnavailable {
            target: self.target.clone(),
            reason: reason.to_string(),
        }
    }

    /// The open channel, connecting first when there is none (or it closed).
    async fn channel(&self) -> Result<Channel, Error> {
        let mut link = self.link.lock().await;
        if let Some(l) = link.as_ref() {
            if l.connection.status().connected() && l.channel.status().connected() {
                return Ok(l.channel.clone());
            }
            close(link.take());
        }
        let connection = Connection::connect(&self.url, ConnectionProperties::default())
            .await
            .map_err(|e| self.unavailable(format!("cannot connect: {e}")))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| self.unavailable(format!("cannot open a channel: {e}")))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| self.unavailable(format!("cannot enable publisher confirms: {e}")))?;
        // The managers' declaration: a mismatch (an exchange of this name
        // declared otherwise) closes the channel with PRECONDITION_FAILED,
        // which names the difference.
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                EXCHANGE_KIND,
                ExchangeDeclareOptions {
                    durable: false,
                    auto_delete: false,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| self.unavailable(format!("cannot declare exchange {:?}: {e}", self.exchange)))?;
        tracing::info!(target_name = %self.target, exchange = %self.exchange, "connected to the AMQP broker");
        *link = Some(Link {
            connection,
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// Forgets the link after a failure (the next call connects again).
    async fn reset(&self) {
        close(self.link.lock().await.take());
    }

    /// Publishes `bodies` in order and waits for the broker's confirms, the
    /// whole call (connecting included) bounded by the timeout; for each,
    /// whether a queue took it.
    pub async fn publish_all(&self, bodies: &[&[u8]]) -> Result<Vec<bool>, Error> {
        let work = async {
            let channel = self.channel().await?;
            let mut confirms = Vec::with_capacity(bodies.len());
            for body in bodies {
                let confirm = channel
                    .basic_publish(
                        self.exchange.as_str().into(),
                        self.routing_key(),
                        BasicPublishOptions {
                            mandatory: true,
                            ..BasicPublishOptions::default()
                        },
                        body,
                        self.properties(),
                    )
                    .await
                    .map_err(|e| self.unavailable(format!("publish failed: {e}")))?;
                confirms.push(confirm);
            }
            let mut routed = Vec::with_capacity(confirms.len());
            for confirm in confirms {
                match confirm
                    .await
                    .map_err(|e| self.unavailable(format!("no confirm: {e}")))?
                {
                    Confirmation::Ack(returned) => routed.push(returned.is_none()),
                    Confirmation::Nack(_) => return Err(self.unavailable("the broker refused the message (nack)")),
                    Confirmation::NotRequested => return Err(self.unavailable("the channel is not in confirm mode")),
                }
            }
            Ok(routed)
        };
        let result = tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(self.unavailable(format!("the broker did not answer within {:?}", self.timeout))));
        if result.is_err() {
            self.reset().await;
        }
        result
    }

    /// Checks that the broker is reachable (connecting if needed).
    pub async fn ping(&self) -> Result<(), Error> {
        let result = tokio::time::timeout(self.timeout, self.channel())
            .await
            .unwrap_or_else(|_| Err(self.unavailable(format!("the broker did not answer within {:?}", self.timeout))));
        if result.is_err() {
            self.reset().await;
        }
        result.map(drop)
    }

    fn routing_key(&self) -> ShortString {
        match self.publisher {
            Publisher::Kombu => "".into(),
            Publisher::AioPika => "*".into(),
        }
    }

    /// The properties of the manager the target imitates.
    fn properties(&self) -> BasicProperties {
        let common = BasicProperties::default()
            .with_headers(FieldTable::default())
            .with_delivery_mode(PERSISTENT)
            .with_priority(0);
        match self.publisher {
            Publisher::Kombu => common
                .with_content_type("text/plain".into())
                .with_content_encoding("utf-8".into()),
            Publisher::AioPika => common.with_message_id(message_id().into()),
        }
    }
}

/// A random 32-hex-digit id, the shape of aio-pika's `uuid4().hex`.
fn message_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // Only the shape matters to receivers, which never read it.
        bytes = std::process::id()
            .to_le_bytes()
            .repeat(4)
            .try_into()
            .unwrap_or_default();
    }
    hex::encode(bytes)
}

/// Closes a dropped link in the background (it may be dead already).
fn close(link: Option<Link>) {
    if let Some(l) = link {
        tokio::spawn(async move {
            let _ = l.connection.close(200, "reconnecting".into()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn target(toml: &str) -> Result<crate::config::TargetConfig, String> {
        Config::from_toml(toml)
            .map(|c| c.targets["default"].clone())
            .map_err(|e| e.to_string())
    }

    const PYTHON: &str = "[[targets]]\nname = \"default\"\ndialect = \"python-socketio\"\n";

    #[test]
    fn an_amqp_target_reads_its_url_and_publisher() {
        let t = target(&format!("{PYTHON}amqp_url = \"amqp://u:p@h:5672/%2f\"\n")).unwrap();
        assert_eq!(
            t.amqp,
            Some(AmqpConfig {
                url: "amqp://u:p@h:5672/%2f".into(),
                publisher: Publisher::Kombu
            })
        );
        let t = target(&format!(
            "{PYTHON}amqp_url = \"amqps://h/vh\"\namqp_publisher = \"aio-pika\"\n"
        ))
        .unwrap();
        assert_eq!(t.amqp.map(|a| a.publisher), Some(Publisher::AioPika));
        // Old configs are Redis targets as before.
        assert_eq!(target(PYTHON).unwrap().amqp, None);
    }

    #[test]
    fn wrong_combinations_name_the_setting() {
        let cases = [
            (
                "[[targets]]\nname = \"default\"\namqp_url = \"amqp://h\"\n".to_owned(),
                "targets[0].amqp_url: only the python-socketio dialect",
            ),
            (
                format!("{PYTHON}amqp_url = \"amqp://h\"\nredis_url = \"redis://h\"\n"),
                "targets[0].amqp_url: a target reaches its servers either",
            ),
            (
                format!("{PYTHON}amqp_url = \"http://h\"\n"),
                "targets[0].amqp_url: \"http://h\" is not an amqp://",
            ),
            (
                format!("{PYTHON}amqp_publisher = \"kombu\"\n"),
                "targets[0].amqp_publisher: needs amqp_url",
            ),
            (
                format!("{PYTHON}amqp_url = \"amqp://h\"\ncluster = true\n"),
                "targets[0].cluster: a target reaches its servers either",
            ),
        ];
        for (toml, want) in cases {
            let err = target(&toml).unwrap_err();
            assert!(err.contains(want), "{toml}: {err}");
        }
    }

    #[test]
    fn properties_are_those_of_the_chosen_manager() {
        let b = |publisher| {
            AmqpBackend::new(
                "t",
                &AmqpConfig {
                    url: "amqp://h".into(),
                    publisher,
                },
                "socketio",
                Duration::from_secs(1),
            )
            .unwrap()
        };
        let kombu = b(Publisher::Kombu);
        let p = kombu.properties();
        assert_eq!(kombu.routing_key().as_str(), "");
        assert_eq!(p.content_type().as_ref().map(|s| s.as_str()), Some("text/plain"));
        assert_eq!(p.content_encoding().as_ref().map(|s| s.as_str()), Some("utf-8"));
        assert_eq!(*p.delivery_mode(), Some(2));
        assert_eq!(*p.priority(), Some(0));
        assert_eq!(*p.message_id(), None);
        let pika = b(Publisher::AioPika);
        let p = pika.properties();
        assert_eq!(pika.routing_key().as_str(), "*");
        assert_eq!(*p.content_type(), None);
        assert_eq!(*p.delivery_mode(), Some(2));
        let id = p.message_id().clone().unwrap();
        assert!(id.as_str().len() == 32 && id.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
