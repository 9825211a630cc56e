import pytest

from search.step_format import StepFormat, check_compatible


def test_render_split_extract_round_trip(fmt):
    steps = ["2+7=9", "9*3=27", "A:27"]
    text = fmt.render("(2+7)*3", steps)
    assert text == "Q:(2+7)*3\n2+7=9\n9*3=27\nA:27\n"
    solution = text[len(fmt.prompt("(2+7)*3")) :]
    assert fmt.split_steps(solution) == steps
    assert fmt.extract_answer(solution) == "27"
    assert fmt.extract_answer("2+7=9\n") is None


def test_encode_marks_the_separator_of_each_step(fmt, tokenizer):
    steps = ["2+7=9", "9*3=27", "A:27"]
    ids, ends, _ = fmt.encode(tokenizer, fmt.prompt("(2+7)*3"), steps)
    assert ids == tokenizer(fmt.render("(2+7)*3", steps))["input_ids"]  # char level: same as one call
    assert len(ends) == len(steps)
    assert all(tokenizer.decode([ids[e]]) == "\n" for e in ends)
    assert tokenizer.decode(ids[ends[0] + 1 : ends[1] + 1]) == "9*3=27\n"


def test_format_metadata_round_trip_and_mismatch(fmt):
    assert StepFormat.from_dict(fmt.to_dict()) == fmt
    check_compatible(fmt, fmt.to_dict(), "ckpt")
    other = StepFormat(name="gsm8k", prompt_template="{question}\n", answer_prefix="#### ")
    with pytest.raises(ValueError, match="does not match"):
        check_compatible(fmt, other.to_dict(), "ckpt")
    with pytest.raises(ValueError, match="carries no step format"):
        check_compatible(fmt, None, "ckpt")
    with pytest.raises(ValueError, match="unknown step format keys"):
        StepFormat.from_dict({**fmt.to_dict(), "extra": 1})
