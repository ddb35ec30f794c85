"""Reading cases from JSON Lines and CSV (`guidance_rules.cli.inputs`), unit by unit and in process:
what each reader promises about line numbers, limits, the messages of every problem, and what a
CSV file's first bytes tell about its form. Written against the mutation run of issue 24 (most
batch tests start a `guidance-rules` process, which no planted fault in this module reaches)."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from guidance_rules.cli.inputs import (
    MAX_LINE,
    Columns,
    CsvForm,
    Lines,
    Record,
    csv_value,
    detect_csv,
    parse_json_case,
    read_csv,
    read_jsonl,
    sniff,
)
from guidance_rules.errors import InputError

HINT = "to carry it to the output use --id-column NAME, to skip such columns use --extra-columns ignore"
HEADER_HINT = "to carry one to the output use --id-column NAME, to skip such columns use --extra-columns ignore"
TOO_LONG = f"line too long (more than {MAX_LINE} bytes); not read"


def problems(text: str) -> list[tuple[str, str]]:
    with pytest.raises(InputError) as raised:
        parse_json_case(text)
    return raised.value.problems


@pytest.fixture
def int_digits() -> Iterator[None]:
    """Python's limit on the digits of an int read from text, restored after the test."""
    saved = sys.get_int_max_str_digits()
    yield
    sys.set_int_max_str_digits(saved)


# -- one case from JSON text ---------------------------------------------------------------------


def test_a_json_case_is_parsed_and_its_words_folded() -> None:
    assert parse_json_case('{"site": " Knee", "injectate": "PRP", "anatomy_variance": ["Obesity"], "palpable": true}') == {
        "site": "knee",
        "injectate": "prp",
        "anatomy_variance": ["obesity"],
        "palpable": True,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty input: expected a JSON object describing one case"),
        ("  \n\t", "empty input: expected a JSON object describing one case"),
        ("[1, 2]", "expected a JSON object with case fields, got list"),
        ('"knee"', "expected a JSON object with case fields, got str"),
        ("{broken", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("[" * 100_000 + "]" * 100_000, f"input too long ({200_000} characters; at most {MAX_LINE})"),
        ("[" * 40_000 + "]" * 40_000, "not valid JSON: nested too deeply"),
    ],
)
def test_text_that_is_not_one_json_object_is_said_plainly(text: str, message: str) -> None:
    assert problems(text) == [("", message)]


def test_the_length_limit_is_inclusive() -> None:
    text = '{"site": "knee", "injectate": "prp"}'
    padded = text + " " * (MAX_LINE - len(text))
    assert len(padded) == MAX_LINE and parse_json_case(padded) == {"site": "knee", "injectate": "prp"}
    assert problems(padded + " ") == [("", f"input too long ({MAX_LINE + 1} characters; at most {MAX_LINE})")]


def test_a_key_given_twice_is_refused_not_the_last_value_kept() -> None:
    assert problems('{"site": "knee", "injectate": "prp", "site": "hip"}') == [
        ("site", "'site' is given twice in one object; give it once")
    ]
    assert problems('{"a": {"b": 1, "b": 2}}') == [("b", "'b' is given twice in one object; give it once")]


def test_a_number_too_long_to_read_names_the_field_holding_it_at_any_depth(int_digits: None) -> None:
    sys.set_int_max_str_digits(4_300)
    long = "9" * 4_301
    said = (
        "a number 4,301 digits long was given, too long to read (at most 4,300 digits); "
        "give a value 'guidance-rules schema' allows for '{}'"
    )
    assert problems(f'{{"site": "knee", "palpable": {long}}}') == [("palpable", said.format("palpable"))]
    assert problems(f'{{"site": "knee", "anatomy_variance": ["x", {{"y": [{long}]}}]}}') == [
        ("anatomy_variance", said.format("anatomy_variance"))
    ]
    assert problems(long) == [("", "expected a JSON object with case fields, got a number too long to read")]


def test_a_number_at_the_digit_limit_is_read_sign_aside(int_digits: None) -> None:
    sys.set_int_max_str_digits(4_300)
    assert parse_json_case(f'{{"palpable": -{"9" * 4_300}}}') == {"palpable": -int("9" * 4_300)}
    assert parse_json_case(f'{{"palpable": {"9" * 4_300}}}') == {"palpable": int("9" * 4_300)}


def test_without_a_digit_limit_every_number_is_read(int_digits: None) -> None:
    sys.set_int_max_str_digits(0)
    assert parse_json_case(f'{{"palpable": {"7" * 5_000}}}') == {"palpable": int("7" * 5_000)}
    assert parse_json_case('{"palpable": 12}') == {"palpable": 12}


# -- cells and columns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "raw", "value"),
    [
        ("anatomy_variance", " obesity; effusion;; ", ["obesity", " effusion"]),
        ("anatomy_variance", "", []),
        ("palpable", " TRUE ", True),
        ("palpable", "False", False),
        ("palpable", " yes ", "yes"),
        ("site", " Knee ", "Knee"),
        ("injectate", "true", "true"),
    ],
)
def test_a_csv_cell_becomes_a_case_value(field: str, raw: str, value: Any) -> None:
    assert csv_value(field, raw) == value


def test_columns_carry_an_id_and_refuse_or_ignore_other_keys() -> None:
    data = {"site": "knee", "injectate": "prp", "order": 7}
    assert Columns().split(dict(data)) == (None, data, [("order", f"'order' is not a case field; {HINT}")])
    assert Columns(id_column="order").split(dict(data)) == (7, {"site": "knee", "injectate": "prp"}, [])
    assert Columns(ignore_extra=True).split(dict(data)) == (None, {"site": "knee", "injectate": "prp"}, [])
    assert Columns(id_column="site").split(dict(data)) == ("knee", data, [("order", f"'order' is not a case field; {HINT}")])
    assert Columns(id_column="missing").split({"site": "knee"}) == (None, {"site": "knee"}, [])


def test_a_misspelt_column_gets_the_closest_field_and_the_way_out() -> None:
    said = Columns().split({"sitee": "knee"})[2]
    assert said == [("sitee", "'sitee' is not a case field; did you mean 'site'? " + HINT[0].upper() + HINT[1:])]


# -- JSON Lines ----------------------------------------------------------------------------------


NO_COLUMNS = Columns()
UTF8_COMMA = CsvForm(",", "utf-8")


def jsonl(data: bytes, columns: Columns = NO_COLUMNS) -> tuple[list[Record], Lines]:
    seen = Lines()
    return list(read_jsonl(io.BytesIO(data), columns, seen)), seen


def test_json_lines_are_numbered_like_the_file_and_every_line_counted() -> None:
    data = b'\xef\xbb\xbf{"site": "knee", "injectate": "prp"}\r\n\n  \r\n{"site": "hip", "injectate": "prp", "id": 5}\n'
    got, seen = jsonl(data, Columns(id_column="id"))
    assert got == [
        Record(1, {"site": "knee", "injectate": "prp"}, [], None),
        Record(4, {"site": "hip", "injectate": "prp"}, [], 5),
    ]
    assert (seen.read, seen.bytes, seen.blank, seen.header, seen.continued) == (4, len(data), 2, 0, 0)


def test_a_bom_is_taken_only_from_the_first_line() -> None:
    got, _ = jsonl(b'{"site": "knee", "injectate": "prp"}\n\xef\xbb\xbf{"site": "hip"}\n')
    assert got[0].data == {"site": "knee", "injectate": "prp"}
    assert got[1].data is None and got[1].problems[0][1].startswith("not valid JSON: ")


def test_each_bad_json_line_is_its_own_record_and_reading_goes_on() -> None:
    data = b'{"site": "knee"}\n\x80abc\nab\xffc\n[1]\n{"colour": 1}\n{"site": "hip"}'
    got, seen = jsonl(data)
    assert got == [
        Record(1, {"site": "knee"}, []),
        Record(2, None, [("", "not UTF-8 text: byte 0x80 at position 1")]),
        Record(3, None, [("", "not UTF-8 text: byte 0xff at position 3")]),
        Record(4, None, [("", "expected a JSON object with case fields, got list")]),
        Record(5, None, [("colour", f"'colour' is not a case field; {HINT}")]),
        Record(6, {"site": "hip"}, []),
    ]
    assert (seen.read, seen.bytes) == (6, len(data))


def test_a_line_over_the_limit_is_its_error_its_bytes_skipped_and_counted() -> None:
    case = b'{"site": "knee", "injectate": "prp"}'
    longest = case + b" " * (MAX_LINE - len(case))  # MAX_LINE bytes before the line end: read
    data = longest + b"\n" + b"x" * (MAX_LINE + 1) + b"\n" + b"y" * (3 * MAX_LINE + 7) + b"\n" + case + b"\n" + b"z" * (MAX_LINE + 1)
    got, seen = jsonl(data)
    assert got == [
        Record(1, {"site": "knee", "injectate": "prp"}, []),
        Record(2, None, [("", TOO_LONG)]),
        Record(3, None, [("", TOO_LONG)]),
        Record(4, {"site": "knee", "injectate": "prp"}, []),
        Record(5, None, [("", TOO_LONG)]),
    ]
    assert (seen.read, seen.bytes) == (5, len(data))


def test_a_last_line_of_exactly_the_limit_without_a_line_end_is_read() -> None:
    case = b'{"site": "knee", "injectate": "prp"}'
    got, seen = jsonl(case + b" " * (MAX_LINE - len(case)))
    assert got == [Record(1, {"site": "knee", "injectate": "prp"}, [])] and seen.bytes == MAX_LINE


def test_a_line_one_byte_over_the_limit_before_its_line_end_is_too_long() -> None:
    case = b'{"site": "knee", "injectate": "prp"}'
    exact = case + b" " * (MAX_LINE + 1 - len(case))  # MAX_LINE + 1 bytes before the line end: too long
    got, seen = jsonl(exact + b"\r\n" + case + b"\n")
    assert [r.problems for r in got] == [[("", TOO_LONG)], []]
    assert seen.bytes == len(exact) + 2 + len(case) + 1


# -- CSV: form, rows, header ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "form", "said"),
    [
        (b"site,injectate\nknee,prp\n", CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),
        (b"\xef\xbb\xbfsite;injectate\n", CsvForm(";", "utf-8"), ["encoding UTF-8", "delimiter ';'"]),
        (b"\n \nsite\tinjectate\tid,x\n", CsvForm("\t", "utf-8"), ["encoding UTF-8", "delimiter tab"]),
        (b"site\n", CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),
        (b"", CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),
        (b'"a;b;c",site,injectate\n', CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),
        (b"order;site\nR\xe9f;knee\n", CsvForm(";", "cp1252"), ["encoding Windows-1252 (not UTF-8 text)", "delimiter ';'"]),
        (b"R\xe9f,site;x\n", CsvForm(",", "cp1252"), ["encoding Windows-1252 (not UTF-8 text)", "delimiter ','"]),
        (b"site,injectate\nx\xf0\x9f\x98", CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),  # a character cut at the end
        (b"site,injectate\n\xc3", CsvForm(",", "utf-8"), ["encoding UTF-8", "delimiter ','"]),
        (b"site,injectate\n\xc3x", CsvForm(",", "cp1252"), ["encoding Windows-1252 (not UTF-8 text)", "delimiter ','"]),
        (b"site,injectate\n\xc3\xa9\xff\xc3", CsvForm(",", "cp1252"), ["encoding Windows-1252 (not UTF-8 text)", "delimiter ','"]),
    ],
)
def test_a_csv_files_form_is_detected_from_its_head(head: bytes, form: CsvForm, said: list[str]) -> None:
    assert detect_csv(head) == (form, said)


def test_a_given_delimiter_or_encoding_is_used_and_not_said() -> None:
    assert detect_csv(b"a;b\n", delimiter="|") == (CsvForm("|", "utf-8"), ["encoding UTF-8"])
    assert detect_csv(b"a;b\n", encoding="cp1252") == (CsvForm(";", "cp1252"), ["delimiter ';'"])
    assert detect_csv(b"a;b\n", delimiter=",", encoding="utf-8") == (CsvForm(",", "utf-8"), [])


def csv_records(data: bytes, columns: Columns = NO_COLUMNS, form: CsvForm = UTF8_COMMA) -> tuple[list[Record], Lines]:
    seen = Lines()
    return list(read_csv(io.BytesIO(data), columns, form, seen)), seen


def test_csv_rows_become_records_numbered_by_their_first_line() -> None:
    data = b'site,injectate,anatomy_variance,palpable\r\nKnee , PRP,obesity;effusion,TRUE\n\n,,,\nhip,"p\nrp",,\n"knee",prp,,false\n'
    got, seen = csv_records(data)
    assert got == [
        Record(2, {"site": "knee", "injectate": "prp", "anatomy_variance": ["obesity", "effusion"], "palpable": True}, []),
        Record(4, {}, []),
        Record(5, {"site": "hip", "injectate": "p\nrp"}, []),
        Record(7, {"site": "knee", "injectate": "prp", "palpable": False}, []),
    ]
    assert (seen.read, seen.header, seen.blank, seen.continued, seen.bytes) == (7, 1, 1, 1, len(data))


def test_a_csv_row_with_the_wrong_number_of_cells_is_its_error() -> None:
    got, _ = csv_records(b"site,injectate\nknee\nknee,prp,x\nknee,prp\n")
    assert got == [
        Record(2, None, [("", "expected 2 cells as in the header, got 1")]),
        Record(3, None, [("", "expected 2 cells as in the header, got 3")]),
        Record(4, {"site": "knee", "injectate": "prp"}, []),
    ]


def test_the_id_column_is_carried_as_text_even_when_empty() -> None:
    got, _ = csv_records(b"order,site,injectate\n 12 ,knee,prp\n,hip,prp\n", Columns(id_column="order"))
    assert got == [Record(2, {"site": "knee", "injectate": "prp"}, [], "12"), Record(3, {"site": "hip", "injectate": "prp"}, [], "")]
    named, _ = csv_records(b"site,injectate\nKnee,prp\n", Columns(id_column="site"))
    assert named == [Record(2, {"site": "knee", "injectate": "prp"}, [], "Knee")]


def test_bytes_the_encoding_does_not_define_name_their_column() -> None:
    utf8 = "not UTF-8 text; if the file was saved as Windows-1252 (Excel in Western Europe), give --encoding windows-1252"
    got, _ = csv_records(b"site,injectate\nknee,pr\xe9p\nkn\xffee,prp,x\xff\nknee,prp,\xff\n")
    assert got == [
        Record(2, None, [("injectate", utf8)]),
        Record(3, None, [("site", utf8)]),
        Record(4, None, [("", utf8)]),  # a cell past the header's: no column to name
    ]
    cp1252, _ = csv_records(b"site,injectate\nknee,p\x81rp\nknee,pr\xe9p\n", form=CsvForm(",", "cp1252"))
    assert cp1252[0] == Record(2, None, [("injectate", "not Windows-1252 text; give the file's encoding with --encoding")])
    assert cp1252[1].data == {"site": "knee", "injectate": "pr\xe9p"}
    ascii_, _ = csv_records(b"site,injectate\nknee,pr\xe9p\n", form=CsvForm(",", "ascii"))
    assert ascii_[0].problems == [("injectate", "not ascii text; give the file's encoding with --encoding")]


def test_an_unclosed_quote_is_its_rows_error_and_the_following_lines_are_read_again() -> None:
    got, seen = csv_records(b'site,injectate\nknee,"prp\nhip,prp\nknee,prp\n')
    assert got == [
        Record(
            2,
            None,
            [("", "a quoted cell opened on this line is not closed before the end of the input; the row was not read (check its quotes)")],
        ),
        Record(3, {"site": "hip", "injectate": "prp"}, []),
        Record(4, {"site": "knee", "injectate": "prp"}, []),
    ]
    assert (seen.read, seen.continued) == (4, 0)


def test_a_quoted_cell_may_span_lines_up_to_the_line_limit_in_all() -> None:
    half = b"a" * (MAX_LINE // 2)
    within = b'site,injectate\nknee,"' + half + b"\n" + half[: MAX_LINE // 2 - 7] + b'"\nhip,prp\n'
    got, seen = csv_records(within)
    spanning = (half + b"\n" + half[: MAX_LINE // 2 - 7]).decode()
    assert got == [Record(2, {"site": "knee", "injectate": spanning}, []), Record(4, {"site": "hip", "injectate": "prp"}, [])]
    assert seen.continued == 1
    beyond = b'site,injectate\nknee,"' + half + b"\n" + half + b'"\nhip,prp\n'
    got, seen = csv_records(beyond)
    assert got[0] == Record(
        2,
        None,
        [("", f"a quoted cell opened on this line is not closed within {MAX_LINE:,} bytes; the row was not read (check its quotes)")],
    )
    assert [r.line for r in got] == [2, 3, 4] and got[2].data == {"site": "hip", "injectate": "prp"}


def test_a_line_too_long_inside_a_quoted_cell_ends_the_row_and_is_its_own_error() -> None:
    data = b'site,injectate\nknee,"prp\n' + b"x" * (MAX_LINE + 5) + b"\nhip,prp\n"
    got, seen = csv_records(data)
    assert got == [
        Record(
            2,
            None,
            [("", f"a quoted cell opened on this line is not closed within {MAX_LINE:,} bytes; the row was not read (check its quotes)")],
        ),
        Record(3, None, [("", TOO_LONG)]),
        Record(4, {"site": "hip", "injectate": "prp"}, []),
    ]
    assert (seen.read, seen.bytes) == (4, len(data))


def test_a_quote_inside_an_unquoted_cell_or_after_a_closed_one_is_no_open_quote() -> None:
    got, _ = csv_records(b'site,injectate\nkn"ee,prp\n"knee"x,"p""r",\n"hip",prp\n')
    assert got == [
        Record(2, {"site": 'kn"ee', "injectate": "prp"}, []),
        Record(3, None, [("", "expected 2 cells as in the header, got 3")]),
        Record(4, {"site": "hip", "injectate": "prp"}, []),
    ]


@pytest.mark.parametrize(
    ("header", "options", "said"),
    [
        (b"site,site,injectate", Columns(), [("header", "column 'site' appears twice in the header; give each column once")]),
        (
            b"site,injectate,site,injectate",
            Columns(),
            [("header", "column 'injectate', 'site' appears twice in the header; give each column once")],
        ),
        (
            b"site,injectate",
            Columns(id_column="order"),
            [("--id-column", "'order' is not a column of the header; its columns: site, injectate")],
        ),
        (b"site,colour", Columns(), [("header", f"column 'colour' is not a case field; {HEADER_HINT}")]),
        (b"sitee,injectate", Columns(), [("header", f"column 'sitee' (did you mean 'site'?) is not a case field; {HEADER_HINT}")]),
        (b"a,site,b", Columns(), [("header", f"columns 'a', 'b' are not case fields; {HEADER_HINT}")]),
        (
            b"site;injectate",
            Columns(),
            [
                (
                    "header",
                    "column 'site;injectate' is not a case field; the header looks separated by ';': give --delimiter ';'",
                )
            ],
        ),
        (
            b"site\tinjectate",
            Columns(),
            [
                (
                    "header",
                    "column 'site\tinjectate' is not a case field; the header looks separated by tab: give --delimiter tab",
                )
            ],
        ),
        (
            b"site,site,colour",
            Columns(id_column="order"),
            [
                ("header", "column 'site' appears twice in the header; give each column once"),
                ("--id-column", "'order' is not a column of the header; its columns: site, site, colour"),
                ("header", f"column 'colour' is not a case field; {HEADER_HINT}"),
            ],
        ),
    ],
)
def test_a_header_that_does_not_fit_the_options_is_one_error_before_any_record(
    header: bytes, options: Columns, said: list[tuple[str, str]]
) -> None:
    with pytest.raises(InputError) as raised:
        csv_records(header + b"\nknee,prp\n", options)
    assert raised.value.problems == said


def test_a_header_fits_with_ignored_or_empty_extra_columns_and_the_id_column() -> None:
    got, _ = csv_records(b"site,colour,injectate,\nknee,red,prp,\n", Columns(ignore_extra=True))
    assert got == [Record(2, {"site": "knee", "injectate": "prp"}, [])]
    got, _ = csv_records(b"order,site,injectate\n1,knee,prp\n", Columns(id_column="order"))
    assert got == [Record(2, {"site": "knee", "injectate": "prp"}, [], "1")]
    got, _ = csv_records(b"site,injectate,\nknee,prp,\n")
    assert got == [Record(2, {"site": "knee", "injectate": "prp"}, [])]


def test_a_header_row_that_cannot_be_read_is_refused() -> None:
    with pytest.raises(InputError) as raised:
        csv_records(b'"site,injectate\nknee,prp\n')
    assert raised.value.problems == [
        (
            "header",
            "line 1: a quoted cell opened on this line is not closed before the end of the input; the row was not read (check its quotes)",
        )
    ]
    with pytest.raises(InputError) as raised:
        csv_records(b"x" * (MAX_LINE + 1) + b"\n")
    assert raised.value.problems == [("header", f"line 1: {TOO_LONG}")]


def test_an_empty_csv_has_no_records() -> None:
    assert csv_records(b"") == ([], Lines())
    got, seen = csv_records(b"site,injectate\n")
    assert got == [] and seen.header == 1


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b'{"site": "knee"}', "jsonl"),
        (b'\xef\xbb\xbf \n\t{"site": "knee"}', "jsonl"),
        (b"site,injectate\n", "csv"),
        (b"", "csv"),
        (b'\xef\xbb\xbf"{"', "csv"),
    ],
)
def test_json_lines_are_told_from_csv_by_the_first_byte(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


def test_records_round_trip_through_json() -> None:
    """What batch writes of a record's problems is plain JSON."""
    got, _ = jsonl(b'{"colour": 1}\n')
    assert json.loads(json.dumps(got[0].problems)) == [["colour", f"'colour' is not a case field; {HINT}"]]


def test_a_line_keeps_its_trailing_cells_and_characters() -> None:
    got, _ = csv_records(b"site\tinjectate\tid\tpalpable\nknee\tprp\tX-1X\t\n", Columns(id_column="id"), CsvForm("\t", "utf-8"))
    assert got == [Record(2, {"site": "knee", "injectate": "prp"}, [], "X-1X")]


def test_a_header_with_bytes_the_encoding_does_not_define_is_still_read() -> None:
    assert detect_csv(b"a\x81b;site\n") == (CsvForm(";", "cp1252"), ["encoding Windows-1252 (not UTF-8 text)", "delimiter ';'"])


@pytest.mark.parametrize(("head", "delimiter"), [(b'"a";"x,y,z";b\n', ";"), (b'"a;b;c;d",site,injectate\n', ",")])
def test_delimiters_inside_quoted_header_cells_do_not_count(head: bytes, delimiter: str) -> None:
    assert detect_csv(head)[0].delimiter == delimiter


def test_a_quoted_cell_over_many_lines_counts_all_of_them_against_the_limit() -> None:
    third = b"a" * 40_000
    data = b'site,injectate\nknee,"' + third + b"\n" + third + b"\n" + third + b'"\nhip,prp\n'
    got, _ = csv_records(data)
    assert got[0] == Record(
        2,
        None,
        [("", f"a quoted cell opened on this line is not closed within {MAX_LINE:,} bytes; the row was not read (check its quotes)")],
    )
    assert got[-1] == Record(5, {"site": "hip", "injectate": "prp"}, [])


def test_blank_lines_are_each_counted() -> None:
    _, seen = csv_records(b"site,injectate\n\n\nknee,prp\n\n")
    assert (seen.blank, seen.read) == (3, 5)


def test_a_carriage_return_inside_a_line_is_read_as_the_csv_module_reads_it() -> None:
    got, _ = csv_records(b"site,injectate\nkn\ree,prp\n")
    assert [r.line for r in got] == [2] and got[0].data is None
    assert got[0].problems[0][1].startswith("not a valid CSV row: new-line character seen in unquoted field")


def test_quoted_cells_are_split_at_the_files_delimiter() -> None:
    got, _ = csv_records(b'site;injectate\n"knee";"p;rp"\n', form=CsvForm(";", "utf-8"))
    assert got == [Record(2, {"site": "knee", "injectate": "p;rp"}, [])]


def test_the_first_undefined_byte_is_not_text() -> None:
    got, _ = csv_records(b"site,injectate\nknee,p\x80rp\n")
    assert got[0].data is None and got[0].problems[0][0] == "injectate"


def test_readers_count_for_themselves_when_not_asked_to() -> None:
    assert [r.line for r in read_csv(io.BytesIO(b"site,injectate\nknee,prp\n"))] == [2]
    assert [r.line for r in read_jsonl(io.BytesIO(b'\n{"site": "knee"}\n'))] == [2]


def test_a_value_under_an_unnamed_column_is_the_rows_problem_not_part_of_its_case() -> None:
    got, _ = csv_records(b"site,injectate,\nknee,prp,x\n")
    assert got == [Record(2, None, [("", f"'' is not a case field; {HINT}")])]
