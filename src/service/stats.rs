//! The statistics (统计考核): what a node answers from them
//! (`GET /admin/v1/stats`). What it writes for them is `outcomes.rs`'s;
//! the counting is the stats consumer's (`workers/stats.rs`).

use super::ServiceError;
use crate::domain::{CityPrefix, Day, ParseError};
use crate::store::{StatsRow, Store};

/// The longest span one stats query may cover.
pub const MAX_DAYS: i64 = 366;

/// The days and cities a stats query asks for.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub from: Day,
    pub to: Day,
    pub city: Option<CityPrefix>,
}

impl StatsQuery {
    /// Parse the query's `from`, `to` (`YYYYMMDD`, both required, at most
    /// [`MAX_DAYS`] apart) and `cityNo` (a prefix, optional).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        city: Option<&str>,
    ) -> Result<Self, ParseError> {
        let day = |v: Option<&str>, field| match v.filter(|v| !v.is_empty()) {
            Some(v) => Day::parse(v, field),
            None => Err(ParseError::missing(field)),
        };
        let (from, to) = (day(from, "from")?, day(to, "to")?);
        let span = from.days_to(to);
        if span < 1 {
            return Err(ParseError::malformed("to", "不能早于from"));
        }
        if span > MAX_DAYS {
            return Err(ParseError::malformed(
                "to",
                format!("查询跨度不能超过{MAX_DAYS}天"),
            ));
        }
        let city = match city.filter(|c| !c.is_empty()) {
            Some(c) => Some(CityPrefix::parse(c, "cityNo")?),
            None => None,
        };
        Ok(StatsQuery { from, to, city })
    }
}

/// The counters a query asks for.
pub fn query(store: &Store, q: &StatsQuery) -> Result<Vec<StatsRow>, ServiceError> {
    Ok(store.stats(q.from, q.to, q.city.as_ref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_names_the_field_it_refuses() {
        let field = |from, to, city| StatsQuery::parse(from, to, city).unwrap_err().field;
        assert_eq!(field(None, Some("20261129"), None), "from");
        assert_eq!(field(Some("20261129"), None, None), "to");
        assert_eq!(field(Some("2026-11-29"), Some("20261129"), None), "from");
        assert_eq!(field(Some("20261129"), Some("20261128"), None), "to");
        assert_eq!(field(Some("20250101"), Some("20261129"), None), "to");
        assert_eq!(
            field(Some("20261129"), Some("20261129"), Some("35")),
            "cityNo"
        );
        assert_eq!(
            field(Some("20261129"), Some("20261129"), Some("34x")),
            "cityNo"
        );
        let q = StatsQuery::parse(Some("20261101"), Some("20261130"), Some("3401")).unwrap();
        assert_eq!(
            (q.from.to_string(), q.to.to_string()),
            ("20261101".into(), "20261130".into())
        );
        assert!(q.city.is_some_and(|c| c.covers("340104000000")));
    }
}
