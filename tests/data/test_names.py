import math

from marsvision.data.names import (
    MSL_SCLK_AT_SOL0,
    SECONDS_PER_SOL,
    edr_to_mask_stem,
    label_stem_candidates,
    parse_acquisition,
)


def test_navcam_name_gives_sclk_and_sol():
    acq = parse_acquisition("NLA_397681455EDR_F0020000AUT_04096M1.JPG")
    assert acq is not None and acq.mission == "msl" and acq.instrument == "navcam"
    assert acq.sclk == 397681455.0
    # independent: (397681455 - 397446660) / 88775.244 = 2.645 → sol 2
    assert math.floor(acq.sol) == 2
    assert abs(acq.sol - (397681455 - 397446660) / 88775.244) < 1e-9
    assert MSL_SCLK_AT_SOL0 + 2000 * SECONDS_PER_SOL > 397681455


def test_mastcam_and_mahli_names_give_the_sol():
    assert parse_acquisition("0077ML0005780000102730I01_DRCL.JPG").sol == 77.0
    acq = parse_acquisition("0292MH0002810020103587C00_DRCL.JPG")
    assert acq.instrument == "mahli" and acq.sol == 292.0
    assert parse_acquisition("0549MR0002620000201566E01_DRCL-r90.jpg").sol == 549.0


def test_mer_names_order_by_sclk_within_a_rover():
    early = parse_acquisition("1n128367857eff0200p1901l0m1")
    late = parse_acquisition("1n130000000eff0200p1901l0m1")
    assert early.mission == "opportunity" and late.sol > early.sol
    assert 0 < early.sol < 3  # a day after landing (2004-01-25)


def test_unknown_names_give_none():
    assert parse_acquisition("holiday_photo") is None


def test_edr_to_mask_stem_replaces_the_product_token_only():
    stem = "NLA_397681455EDR_F0020000AUT_04096M1"
    assert edr_to_mask_stem(stem, "MXY") == "NLA_397681455MXY_F0020000AUT_04096M1"
    assert edr_to_mask_stem(stem, "RNG") == "NLA_397681455RNG_F0020000AUT_04096M1"


def test_label_stem_candidates_follow_the_generic_rule():
    assert label_stem_candidates("NLA_1EDR_merged")[0] == "NLA_1EDR"
    mer = label_stem_candidates("1n128367857eff0200p1901l0m1_013_T02_merged")
    assert mer == [
        "1n128367857eff0200p1901l0m1_013_T02",
        "1n128367857eff0200p1901l0m1_013",
        "1n128367857eff0200p1901l0m1",
    ]
    assert label_stem_candidates("2n1eff_merged37") == ["2n1eff"]
