//! Every MariaDB column type round-trips through the live stream exactly.

mod support;

use cdc_core::Source;
use cdc_core::event::{DataType, Record, Value};
use cdc_mysql::MySqlSource;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_exactly_through_the_live_stream() {
    let db = mariadb();
    sql(
        &db,
        "CREATE TABLE test.all_types (
        id INT PRIMARY KEY,
        ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
        mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
        bi BIGINT, biu BIGINT UNSIGNED,
        d1 DECIMAL(10,4), d2 DECIMAL(65,30), d3 DECIMAL(5,0) UNSIGNED,
        f FLOAT, dbl DOUBLE, b1 BIT(1), b64 BIT(64), b10 BIT(10), y YEAR,
        dt DATE, t0 TIME, t3 TIME(3), t6 TIME(6), dtm DATETIME(6), dtm0 DATETIME,
        ts TIMESTAMP(3) NULL DEFAULT NULL,
        c CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(300) CHARACTER SET utf8mb4,
        l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT CHARACTER SET utf8mb4,
        bin BINARY(4), vb VARBINARY(10), bl BLOB,
        e ENUM('small','medium','large'), st SET('a','b','c','d'),
        j JSON, g GEOMETRY, u UUID, ip INET6
    )",
    );
    let mut src = MySqlSource::new(config(&db, &["all_types"])).unwrap();
    src.start(None).await.unwrap();

    sql(&db, "INSERT INTO test.all_types VALUES (
        1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
        -9223372036854775808, 18446744073709551615,
        '-123456.7890', '-12345678901234567890123456789012345.123456789012345678901234567890', 99999,
        1.5, -2.25, b'1', b'1111111111111111111111111111111111111111111111111111111111111111', b'1010101010', 2024,
        '2024-02-29', '-838:59:59', '25:00:00.125', '-00:00:01.000001', '9999-12-31 23:59:59.999999', '1000-01-01 00:00:00',
        '2038-01-19 03:14:07.999',
        'héllo', REPEAT('ü', 300), 'café€', 'text 😀', 0x00ff0102, 0x0001, 0xdeadbeef,
        'medium', 'a,d', '{\"k\": [1, 2.5, \"x\"], \"n\": null}', ST_GeomFromText('POINT(1 2)'),
        '123e4567-e89b-12d3-a456-426614174000', '2001:db8::1'
    )");
    sql(&db, "INSERT INTO test.all_types (id) VALUES (2)");
    sql(
        &db,
        "UPDATE test.all_types SET u = 'ffffffff-ffff-ffff-ffff-ffffffffffff', ip = '::ffff:10.0.0.1', biu = 0 WHERE id = 2",
    );

    let batches = support::transactions(&mut src, 3).await;
    let schema = batches[0]
        .records
        .iter()
        .find_map(|r| match r {
            Record::Schema(s) => Some(s.clone()),
            _ => None,
        })
        .expect("schema record before the first change");
    let col = |name: &str| {
        schema
            .column_index(name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    assert_eq!(schema.primary_key, vec![0]);
    assert_eq!(
        schema.columns[col("biu")].data_type,
        DataType::Int {
            bits: 64,
            signed: false
        }
    );
    assert_eq!(schema.columns[col("u")].data_type, DataType::Uuid);
    assert_eq!(schema.columns[col("j")].data_type, DataType::Json);
    assert_eq!(
        schema.columns[col("e")].data_type,
        DataType::Enum {
            labels: vec!["small".into(), "medium".into(), "large".into()]
        }
    );

    let rows = changes(&batches);
    let row = rows[0].3.clone().unwrap();
    let v = |name: &str| row[col(name)].clone();
    let dec = |s: &str| Value::Decimal(s.parse().unwrap());
    let hms = |h: i64, m: i64, s: i64, us: i64| ((h * 3600 + m * 60 + s) * 1_000_000) + us;
    assert_eq!(v("ti"), Value::Int(-128));
    assert_eq!(v("tiu"), Value::UInt(255));
    assert_eq!(v("si"), Value::Int(-32768));
    assert_eq!(v("siu"), Value::UInt(65535));
    assert_eq!(v("mi"), Value::Int(-8388608));
    assert_eq!(v("miu"), Value::UInt(16777215));
    assert_eq!(v("i"), Value::Int(-2147483648));
    assert_eq!(v("iu"), Value::UInt(4294967295));
    assert_eq!(v("bi"), Value::Int(i64::MIN));
    assert_eq!(v("biu"), Value::UInt(u64::MAX));
    assert_eq!(v("d1"), dec("-123456.7890"));
    assert_eq!(
        v("d2"),
        dec("-12345678901234567890123456789012345.123456789012345678901234567890")
    );
    assert_eq!(v("d3"), dec("99999"));
    assert_eq!(v("f"), Value::Float(1.5));
    assert_eq!(v("dbl"), Value::Double(-2.25));
    assert_eq!(v("b1"), Value::UInt(1));
    assert_eq!(v("b64"), Value::UInt(u64::MAX));
    assert_eq!(v("b10"), Value::UInt(0b1010101010));
    assert_eq!(v("y"), Value::UInt(2024));
    assert_eq!(v("dt"), Value::Date(19782));
    assert_eq!(v("t0"), Value::Time(-hms(838, 59, 59, 0)));
    assert_eq!(v("t3"), Value::Time(hms(25, 0, 0, 125_000)));
    assert_eq!(v("t6"), Value::Time(-hms(0, 0, 1, 1)));
    assert_eq!(v("dtm"), Value::Timestamp(253_402_300_799_999_999));
    assert_eq!(v("dtm0"), Value::Timestamp(-30_610_224_000_000_000));
    assert_eq!(v("ts"), Value::TimestampTz(2_147_483_647_999_000));
    assert_eq!(v("c"), Value::Text("héllo".into()));
    assert_eq!(v("vc"), Value::Text("ü".repeat(300).into()));
    assert_eq!(v("l1"), Value::Text("café€".into()));
    assert_eq!(v("tx"), Value::Text("text 😀".into()));
    assert_eq!(v("bin"), Value::Bytes(vec![0, 0xff, 1, 2]));
    assert_eq!(v("vb"), Value::Bytes(vec![0, 1]));
    assert_eq!(v("bl"), Value::Bytes(vec![0xde, 0xad, 0xbe, 0xef]));
    assert_eq!(v("e"), Value::Enum("medium".into()));
    assert_eq!(v("st"), Value::Set(vec!["a".into(), "d".into()]));
    assert_eq!(
        v("j"),
        Value::Json("{\"k\": [1, 2.5, \"x\"], \"n\": null}".into())
    );
    let mut wkb = vec![1, 1, 0, 0, 0];
    wkb.extend(1.0f64.to_le_bytes());
    wkb.extend(2.0f64.to_le_bytes());
    assert_eq!(v("g"), Value::Bytes(wkb));
    let uuid = cdc_mysql::gtid::parse_uuid("123e4567-e89b-12d3-a456-426614174000").unwrap();
    assert_eq!(v("u"), Value::Uuid(uuid));
    assert_eq!(v("ip"), Value::Text("2001:db8::1".into()));

    let empty = rows[1].3.clone().unwrap();
    assert_eq!(empty[0], Value::Int(2));
    assert!(empty[1..].iter().all(Value::is_null), "{empty:?}");

    let (_, _, before, after) = rows[2].clone();
    assert_eq!(before.unwrap()[col("biu")], Value::Null);
    let after = after.unwrap();
    assert_eq!(after[col("biu")], Value::UInt(0));
    assert_eq!(after[col("u")], Value::Uuid([0xff; 16]));
    assert_eq!(after[col("ip")], Value::Text("::ffff:10.0.0.1".into()));
}
