"""`guidance-rules recommend`: the answer for one case, in full, brief or as JSON."""

from __future__ import annotations

import argparse

import guidance_rules.cli.exits as exits
import guidance_rules.cli.render as render
from guidance_rules.cli.case import answer, case_data
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.rulebase.domain import KnowledgeBase


def run(args: argparse.Namespace, knowledge: KnowledgeBase) -> int:
    recommender = Recommender(knowledge)
    data = case_data(args)
    rec = answer(recommender, data)
    if args.json:
        print(render.json_text(rec))
    elif args.brief:
        print(render.brief(rec))
    else:
        from guidance_rules.cli.whatif import inputs_section
        from guidance_rules.recommendation.whatif import inputs_that_matter

        print(render.recommendation(rec, inputs=inputs_section(inputs_that_matter(data, recommender))))
    return exits.OK
