//! `POST /api/v1/callback` (spec 7.4): a trade report, from a card system
//! (city) or a city (province). 200 only once the report is durable.

use std::sync::Arc;

use axum::extract::State;

use super::envelope::Envelope;
use super::fields::Fields;
use crate::error::ApiError;
use crate::node::Node;
use crate::service::trade::{accept, Outcome, TradeReport};

pub async fn callback(State(node): State<Arc<Node>>, f: Fields) -> Result<Envelope<()>, ApiError> {
    let t = TradeReport::parse(&f)?;
    let trace = uuid::Uuid::new_v4().simple().to_string();
    Ok(match accept(&node, &t, &trace).await? {
        Outcome::New => Envelope::done("消息回传成功"),
        Outcome::Duplicate => Envelope::done("重复的消息回传（该tradeNo已接收），已忽略"),
    })
}
