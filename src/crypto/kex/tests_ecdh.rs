//! ECDH over nistp256/384/521: RFC 5903's known answers and hostile points refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use super::tests::{contents, method};
use super::*;
use crate::crypto::hex;
use crate::crypto::rng::tests::FixedRandom;
use crate::crypto::rng::OsRandom;

/// RFC 5903 §8.1: the 256-bit random ECP group. K is the mpint of the shared x-coordinate.
#[test]
fn ecdh_nistp256_known_answer() {
    let i = hex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
    let gi = hex(
        "04 DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180
            5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
    );
    let gr = hex(
        "04 D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63
            56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
    );
    let girx = hex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
    let ours = method("ecdh-sha2-nistp256").start(&mut FixedRandom(i));
    assert_eq!(ours.public_encoded(), string(&gi));
    let k = ours.agree(&gr).unwrap();
    // The x-coordinate has its top bit set, so the mpint gains a zero byte.
    assert_eq!(*k, [&[0, 0, 0, 33, 0][..], &girx].concat());
}

/// RFC 5903 §8.2 and §8.3: the 384- and 521-bit random ECP groups.
#[test]
fn ecdh_nistp384_and_nistp521_known_answers() {
    let cases = [
        (
            "ecdh-sha2-nistp384",
            "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655
             E35B538041E649EE3FAEF896783AB194",
            "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6
             DE3AC808ACB4BDB4C88732AEE95F41AA
             9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38E
             EB9FCFF3C2C947DAE69B4C634573A81C",
            "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D
             0D1AC43A0336DEF96FDA41D0774A3571
             DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FF
             F83FA40142209DFF5EAAD96DB9E6386C",
            "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4
             D603135569B9E9D09CF5D4A270F59746",
        ),
        (
            "ecdh-sha2-nistp521",
            "0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A0
             95AA85A30FE1C2952C6771D937BA9777F5957B2639BAB072462F68C27A57382D
             4A52",
            "0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBE
             E1E3BF42E00B8E380AEAE57C2D107564941885942AF5A7F4601723C4195D176C
             ED3E
             017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10A
             D8A788015AC405D7799DC75E7B7D5B6CF2261A6A7F1507438BF01BEB6CA3926F
             9582",
            "00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A21
             9B97C356436ADC6E95BB0352F6BE64A6C2912D4EF2D0433CED2B6171640012D9
             460F
             015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B87
             220B6536C5C408A1D2AEBB8E86D678AE49CB57091F4732296579AB44FCD17F0F
             C56A",
            "01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04
             D1427E73CA4BAA240A34786859810C06B3C715A3A8CC3151F2BEE417996D19F3
             DDEA",
        ),
    ];
    for (name, i, gi, gr, girx) in cases {
        let ours = method(name).start(&mut FixedRandom(hex(i)));
        let gi = [&[4u8][..], &hex(gi)].concat();
        let gr = [&[4u8][..], &hex(gr)].concat();
        assert_eq!(ours.public_encoded(), string(&gi), "{name}");
        let k = ours.agree(&gr).unwrap();
        assert_eq!(*k, *mpint(&hex(girx)), "{name}");
    }
}

#[test]
fn ecdh_refuses_bad_peer_values() {
    for name in [
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
    ] {
        let m = method(name);
        let good = contents(m.start(&mut OsRandom).public_encoded()).to_vec();
        let n = good.len();
        let mut off_curve = good.clone();
        off_curve[n - 1] ^= 1;
        let mut compressed = good[..n.div_ceil(2)].to_vec();
        compressed[0] = 2 | (good[n - 1] & 1);
        let mut hybrid = good.clone();
        hybrid[0] = 6;
        // The point at infinity and a point of another curve's size.
        let other = if name.ends_with("256") {
            "ecdh-sha2-nistp384"
        } else {
            "ecdh-sha2-nistp256"
        };
        let foreign = contents(method(other).start(&mut OsRandom).public_encoded()).to_vec();
        for bad in [
            vec![],
            vec![0],
            vec![4; n],
            off_curve,
            compressed,
            hybrid,
            good[..n - 1].to_vec(),
            [&good[..], &[0]].concat(),
            foreign,
        ] {
            let result = m.start(&mut OsRandom).agree(&bad);
            assert!(
                result.is_err(),
                "{name}: {:02x?} accepted",
                &bad[..bad.len().min(8)]
            );
        }
        assert!(m.start(&mut OsRandom).agree(&good).is_ok(), "{name}");
    }
}
