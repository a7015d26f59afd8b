use super::*;

/// CRC-64-AVRO (Rabin) as the Avro specification defines it, independent of
/// the library, to check the fingerprint bytes we write.
fn rabin(data: &[u8]) -> u64 {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let mut table = [0u64; 256];
    for (i, slot) in table.iter_mut().enumerate() {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & (0u64.wrapping_sub(fp & 1)));
        }
        *slot = fp;
    }
    let mut fp = EMPTY;
    for b in data {
        fp = (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize];
    }
    fp
}

fn sample() -> TradeReported {
    TradeReported {
        trace_id: "t".into(),
        received_at: 1,
        city_no: "340100000000".into(),
        name: "张三".into(),
        idcard_no: "340102199003073238".into(),
        target_type: "3401002".into(),
        target_id: "card".into(),
        trade_time: "20200628193425".into(),
        trade_no: "n1".into(),
        msg: "交易成功".into(),
        trade_state: "1".into(),
    }
}

#[test]
fn single_object_encoding_has_magic_and_le_rabin_fingerprint() {
    let bytes = encode(&sample()).unwrap();
    assert_eq!(&bytes[..2], &[0xC3, 0x01]);
    let canonical = TradeReported::schema().schema.canonical_form();
    assert_eq!(&bytes[2..10], &rabin(canonical.as_bytes()).to_le_bytes());
    assert_eq!(decode::<TradeReported>(&bytes).unwrap(), sample());
}

#[test]
fn every_schema_parses_and_every_event_round_trips() {
    let req = TranscodeRequested {
        request_id: "r".into(),
        trace_id: "t".into(),
        deadline_ms: 5,
        reply_partition: 3,
        city_no: "340100000000".into(),
        qr_token: "akm:qrcode:00".into(),
        target_type: "3401002".into(),
        scene_code: String::new(),
        target_object: "{}".into(),
        node: "city-340100000000".into(),
    };
    assert_eq!(
        decode::<TranscodeRequested>(&encode(&req).unwrap()).unwrap(),
        req
    );
    let rep = TranscodeReplied {
        request_id: "r".into(),
        trace_id: "t".into(),
        reply_partition: 2,
        subject_id: String::new(),
        err_code: "200".into(),
        detail: "成功".into(),
        codes: vec![TargetCodeRec {
            target_qr_code: "q".into(),
            target_id: "i".into(),
            target_object: String::new(),
        }],
    };
    assert_eq!(
        decode::<TranscodeReplied>(&encode(&rep).unwrap()).unwrap(),
        rep
    );
    let _ = TradeRecorded::schema();
    let _ = Notification::schema();
}

#[test]
fn garbage_and_foreign_schemas_are_rejected() {
    assert!(matches!(
        decode::<TradeReported>(b"{}"),
        Err(EventError::NoMagic)
    ));
    let other = encode(&sample()).unwrap();
    assert!(matches!(
        decode::<Notification>(&other),
        Err(EventError::UnknownSchema(_))
    ));
    let mut cut = other.clone();
    cut.truncate(14);
    assert!(decode::<TradeReported>(&cut).is_err());
}

/// Single-object bytes of a record written with `schema` (an old writer).
fn single_object(schema: &Schema, rec: apache_avro::types::Record<'_>) -> Vec<u8> {
    let fp = schema.fingerprint::<Rabin>().bytes;
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&fp[..8]);
    out.extend_from_slice(&apache_avro::to_avro_datum(schema, rec).unwrap());
    out
}

/// A reply written by the previous version (rendered `errMsg`, no
/// `detail`, no `replyPartition`) still decodes through `events::decode`,
/// because its schema is in `TranscodeReplied::history()`.
#[test]
fn an_old_writer_decodes_through_decode_via_history() {
    let old = &TranscodeReplied::history()[0].schema;
    let mut rec = apache_avro::types::Record::new(old).unwrap();
    rec.put("requestId", "r");
    rec.put("traceId", "t");
    rec.put("errCode", "5001");
    rec.put("errMsg", "卡管系统生码失败：x");
    rec.put("codes", apache_avro::types::Value::Array(vec![]));
    let bytes = single_object(old, rec);
    let ev: TranscodeReplied = decode(&bytes).unwrap();
    assert_eq!(
        (ev.err_code.as_str(), ev.detail.as_str(), ev.reply_partition),
        ("5001", "", 0)
    );

    let old = &TranscodeRequested::history()[0].schema;
    let mut rec = apache_avro::types::Record::new(old).unwrap();
    for (k, v) in [
        ("requestId", "r"),
        ("traceId", "t"),
        ("cityNo", "340100000000"),
        ("qrToken", "q"),
        ("targetType", "3401002"),
        ("sceneCode", ""),
        ("targetObject", ""),
    ] {
        rec.put(k, v);
    }
    rec.put("deadlineMs", 1i64);
    rec.put("replyPartition", 0i32);
    let ev: TranscodeRequested = decode(&single_object(old, rec)).unwrap();
    assert_eq!(ev.node, "");
    // without the history the old writer is unknown
    assert_ne!(
        TranscodeRequested::history()[0].fingerprint,
        TranscodeRequested::schema().fingerprint
    );
}

/// A transcode outcome written by version 1 (one record per answer, no
/// `count`) reads as a tally of one.
#[test]
fn a_version_1_transcode_outcome_counts_one_answer() {
    let old = &TranscodeAnswered::history()[0].schema;
    let mut rec = apache_avro::types::Record::new(old).unwrap();
    for (k, v) in [
        ("id", "a"),
        ("traceId", "t"),
        ("node", "province"),
        ("cityNo", "340100000000"),
        ("targetType", "3401002"),
        ("sceneCode", "01002"),
        ("errCode", "200"),
    ] {
        rec.put(k, v);
    }
    rec.put("answeredAt", 1i64);
    let ev: TranscodeAnswered = decode(&single_object(old, rec)).unwrap();
    assert_eq!((ev.err_code.as_str(), ev.count), ("200", 1));
}

/// The cached writer writes the same bytes as resolving the schema on every
/// encode did, and keeps writing them (its buffer is reused).
/// What the library writes through a resolved `Value`, the slow path.
fn through_a_value<E: Event>(e: &E) -> Vec<u8> {
    let info = E::schema();
    let value = apache_avro::to_value(e)
        .unwrap()
        .resolve(&info.schema)
        .unwrap();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&info.fingerprint);
    out.extend_from_slice(&apache_avro::to_avro_datum(&info.schema, value).unwrap());
    out
}

#[test]
fn the_direct_encoding_writes_what_a_resolved_value_writes() {
    let e = sample();
    for _ in 0..3 {
        assert_eq!(encode(&e).unwrap(), through_a_value(&e));
    }
    // an array of records, empty and not, ints and longs
    let mut rep = TranscodeReplied {
        request_id: "r".into(),
        trace_id: "t".into(),
        reply_partition: 2,
        subject_id: "s".into(),
        err_code: "200".into(),
        detail: "成功".into(),
        codes: vec![],
    };
    assert_eq!(encode(&rep).unwrap(), through_a_value(&rep));
    rep.codes = (0..3)
        .map(|i| TargetCodeRec {
            target_qr_code: format!("q{i}"),
            target_id: "i".into(),
            target_object: String::new(),
        })
        .collect();
    assert_eq!(encode(&rep).unwrap(), through_a_value(&rep));
    let out = TranscodeAnswered {
        id: "a".into(),
        trace_id: String::new(),
        answered_at: 1_764_460_800_000,
        node: "city-340100".into(),
        city_no: "340100".into(),
        target_type: "3401002".into(),
        scene_code: String::new(),
        err_code: "200".into(),
        count: -7,
    };
    assert_eq!(encode(&out).unwrap(), through_a_value(&out));
    let confluent = encode_confluent(&e, 7).unwrap();
    assert_eq!(&confluent[..5], &[0, 0, 0, 0, 7]);
    assert_eq!(&confluent[5..], &through_a_value(&e)[10..]);
}
