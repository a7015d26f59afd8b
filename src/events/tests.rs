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
    };
    assert_eq!(
        decode::<TranscodeRequested>(&encode(&req).unwrap()).unwrap(),
        req
    );
    let rep = TranscodeReplied {
        request_id: "r".into(),
        trace_id: "t".into(),
        err_code: "200".into(),
        err_msg: "成功".into(),
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

/// An older writer schema (before `msg` existed, say) must stay readable
/// once a new field with a default is added: the reader resolves it.
#[test]
fn old_writer_schemas_resolve_against_new_readers() {
    let old = Schema::parse_str(
        r#"{"type":"record","name":"TranscodeRequested","namespace":"gov.ahzwfw.akm.events",
        "fields":[{"name":"requestId","type":"string"},{"name":"traceId","type":"string"},
        {"name":"deadlineMs","type":"long"},{"name":"replyPartition","type":"int"},
        {"name":"cityNo","type":"string"},{"name":"qrToken","type":"string"},
        {"name":"targetType","type":"string"}]}"#,
    )
    .unwrap();
    let mut rec = apache_avro::types::Record::new(&old).unwrap();
    rec.put("requestId", "r");
    rec.put("traceId", "t");
    rec.put("deadlineMs", 1i64);
    rec.put("replyPartition", 0i32);
    rec.put("cityNo", "340100000000");
    rec.put("qrToken", "q");
    rec.put("targetType", "3401002");
    let body = apache_avro::to_avro_datum(&old, rec).unwrap();
    let value = apache_avro::from_avro_datum(
        &old,
        &mut &body[..],
        Some(&TranscodeRequested::schema().schema),
    )
    .unwrap();
    let ev: TranscodeRequested = apache_avro::from_value(&value).unwrap();
    assert_eq!(ev.scene_code, "");
    assert_eq!(ev.target_object, "");
}
