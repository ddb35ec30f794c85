"""Reference programs the benchmarks measure beside ours, in the same run (issue 22).

This machine's absolute speed drifts with its load, so a figure on its own says little; a ratio to
an anchor measured in the same run says how close we are to what the tools themselves allow.

- `decision`: a small injection-guidance decision (12 rules over 8 fields, 6,336 cases), a
  simplified relative of ours, and the step that turns the fired rules into a modality.
- `eng_hand`: that decision as plain if/else, the floor every other anchor is checked against.
- `eng_pydantic`: the floor behind a pydantic v2 model, what a typed input boundary costs.
- `eng_durable`: the same 12 rules in durable-rules, used as its documentation shows (one fact per
  case asserted into a session of its own, the session deleted afterwards).
- `bench`: measures one of them in a fresh process and prints one JSON line.
- `minimal_pydantic.py`: the smallest useful pydantic program, the cold-start anchor of the CLI.
"""
