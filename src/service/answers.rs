//! Where a worker's answer to a request-reply goes (transcodes,
//! callbacks): straight to the waiter in the pending map when the request
//! was taken by this same instance's ingress ("direct reply", as a
//! message broker's direct reply-to), and on the requester's reply
//! partition otherwise. The request always crosses the bus, so any
//! instance of the role may take it; only the trip back skips the bus
//! when the waiter is here. The reply topics are request-reply and not
//! durable on either side of this choice (DESIGN.md, "Transcode
//! (request-reply)"). An answer is sealed for the topic (`Answer::to_wire`)
//! only when it goes there.

use std::sync::Arc;

use super::pending::{Answer, Pending};
use crate::bus::{Bus, BusError, Channel};
use crate::crypto::Keyring;

/// How an answer reached its requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Handed to a waiter of this instance.
    Direct,
    /// Published on the reply topic (the waiter is elsewhere, or gone).
    Topic,
}

impl Route {
    /// The label of `akm_answers_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Direct => "direct",
            Route::Topic => "topic",
        }
    }
}

/// The answering side of one node's request-reply of `R`.
#[derive(Debug)]
pub struct Answers<R> {
    pub bus: Bus,
    /// This instance's waiters (its ingress's pending map).
    pub local: Arc<Pending<R>>,
    /// Seals what an answer carries when it goes on the topic.
    pub keys: Arc<Keyring>,
}

impl<R> Clone for Answers<R> {
    fn clone(&self) -> Self {
        Answers {
            bus: self.bus.clone(),
            local: self.local.clone(),
            keys: self.keys.clone(),
        }
    }
}

impl<R: Answer> Answers<R> {
    /// Answer a request: to its waiter here, or on the reply topic
    /// (counted in `akm_answers_total` once it is there).
    pub async fn answer(&self, reply: R) -> Result<Route, BusError> {
        let route = match self.local.hand(reply) {
            None => Route::Direct,
            Some(reply) => {
                self.bus.send(&reply.to_wire(&self.keys)).await?;
                Route::Topic
            }
        };
        let topic = self.bus.topics().name(R::Wire::TOPIC);
        self.bus.metrics().answer(&topic, route.as_str());
        Ok(route)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::{BusConsumer, Topic, Topics};
    use crate::crypto::{CipherKind, DataKey};
    use crate::domain::resident::TargetCode;
    use crate::durability::Durable;
    use crate::events::TranscodeReplied;
    use crate::service::transcode::TranscodeAnswer;

    const CARD_ID: &str = "EHC-340102199003073238";

    fn reply(id: &str) -> TranscodeAnswer {
        TranscodeAnswer {
            request_id: id.into(),
            trace_id: "t".into(),
            reply_partition: 0,
            subject_id: String::new(),
            err_code: "0000".into(),
            detail: "转码成功".into(),
            codes: vec![TargetCode {
                target_qr_code: "qr".into(),
                target_id: CARD_ID.into(),
                target_object: String::new(),
            }],
        }
    }

    #[tokio::test]
    async fn a_waiter_here_gets_the_answer_directly_and_others_get_it_sealed_on_the_topic() {
        let dir = tempfile::tempdir().unwrap();
        let durable = Durable::open(dir.path()).unwrap();
        let bus =
            Bus::embedded(&durable, Topics::new("").unwrap(), crate::clock::system()).unwrap();
        let topic = bus.topics().name(Topic::TranscodeReply);
        let kind = CipherKind::Aes256Gcm;
        let keys = Arc::new(Keyring::new(
            DataKey::parse(kind, &DataKey::generate(kind)).unwrap(),
            vec![],
        ));
        let answers = Answers {
            bus: bus.clone(),
            local: Arc::new(Pending::<TranscodeAnswer>::new(8)),
            keys: keys.clone(),
        };
        let mut reader = bus.assign(&topic, 0).await.unwrap();
        // the requester is this instance: handed over, nothing published
        let mut waiter = answers.local.register("here").unwrap();
        assert_eq!(answers.answer(reply("here")).await.unwrap(), Route::Direct);
        let got = (&mut waiter.rx).await.unwrap();
        assert_eq!(got.request_id, "here");
        assert_eq!(got.codes[0].target_id, CARD_ID);
        assert_eq!(bus.count(&topic).await.unwrap(), 0);
        drop(waiter);
        // the requester is another instance: on the topic, the card id sealed
        assert_eq!(
            answers.answer(reply("elsewhere")).await.unwrap(),
            Route::Topic
        );
        assert_eq!(bus.count(&topic).await.unwrap(), 1);
        assert!(answers.local.is_empty());
        let record = reader.next().await.unwrap();
        let wire: TranscodeReplied = crate::events::decode(&record.payload).unwrap();
        assert_ne!(wire.codes[0].target_id, CARD_ID);
        assert!(!String::from_utf8_lossy(&record.payload).contains(CARD_ID));
        // and the requester's listener opens it
        let opened = TranscodeAnswer::from_wire(wire.clone(), &keys);
        assert_eq!(opened.codes[0].target_id, CARD_ID);
        assert_eq!(opened.err_code, "0000");
        // under a key it does not hold, an internal error, no codes
        let other = Keyring::new(
            DataKey::parse(kind, &DataKey::generate(kind)).unwrap(),
            vec![],
        );
        let refused = TranscodeAnswer::from_wire(wire, &other);
        assert_eq!(refused.err_code, crate::protocol::ErrCode::Internal.code());
        assert!(refused.codes.is_empty() && refused.detail.is_empty());
    }
}
