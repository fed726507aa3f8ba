"""What people do on the floor, in the browser: record a step, verify it, enter and
review QC results. The test process only decides what a person would type (from the
recipe and the demo's good run); the server checks and records everything."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from batches.demo_mbr import step_inputs
from batches.models import Batch, StepKind, StepRecord
from batches.progress import load_plan
from qc.demo_qc import PASSING
from tests.conftest import PASSWORD

EXPANSION_DAYS = 8


def next_state(batch: Batch, *, expansion_days: int = EXPANSION_DAYS):
    """The step a technician does next: the page's next step, except that a repeated step
    (daily counts, one scan per bag) gives way to the step after it once done enough."""
    plan = load_plan(batch)
    state = plan.next_step
    if state is not None and state is plan.cycle_continuation:
        wanted = len(batch.product.fraction_percents or [100]) if state.definition.kind == StepKind.SCAN \
            else expansion_days
        if state.count >= wanted:
            state = plan.move_on_step
    return plan, state


def step_message(definition, occurrence: int) -> str:
    suffix = f" #{occurrence}" if definition.repeatable else ""
    return f"{definition.title}{suffix}."


def open_step(session, batch: Batch, state, plan) -> None:
    """The batch page offers the next step by itself; another one is chosen by its link."""
    page = session.page
    title = page.locator("#action-title")
    if state is plan.next_step and page.url.startswith(f"{session.base_url}/batches/{batch.pk}/") \
            and "?" not in page.url:
        if title.count() and title.first.inner_text().startswith(state.definition.title):
            return
        session.go(f"/batches/{batch.pk}/")
    else:
        session.go(f"/batches/{batch.pk}/?step={state.definition.pk}#action")
    expect(title).to_contain_text(state.definition.title)


def fill_step(page, inputs: dict, *, password: str | None = PASSWORD) -> None:
    form = page.locator("#action form.step-form")
    for name, value in inputs.items():
        if name in ("unit",):
            continue
        form.locator(f"[name={name}]").fill(str(value))
    if password is not None:
        form.locator("[name=password]").fill(password)


def record_step(session, batch: Batch, state, plan, *, actor, inputs: dict | None = None) -> StepRecord:
    """Open the step, type what a technician types, sign with the password, press Enter.
    A scan step's label is printed and applied first (by ``actor``) if it is not yet."""
    page = session.page
    open_step(session, batch, state, plan)
    definition, occurrence = state.definition, state.next_occurrence
    fill_step(page, step_inputs(state, batch, actor=actor) if inputs is None else inputs)
    page.locator("#action form.step-form [name=password]").press("Enter")
    session.expect_message(re.escape(step_message(definition, occurrence)))
    return StepRecord.objects.get(batch=batch, definition=definition, occurrence=occurrence)


def verify_record(session, batch: Batch, record: StepRecord) -> None:
    page = session.go(f"/batches/{batch.pk}/?verify={record.pk}#action")
    password = page.locator("#action [name=password]")
    password.fill(PASSWORD)
    password.press("Enter")
    session.expect_message(re.escape(f"Verified: {record.definition.title}."))


def enter_result(session, code: str, outcome=None) -> None:
    """A QC analyst enters one result of the batch's QC page and signs it as performed."""
    page = session.page
    given = (outcome or PASSING)[code]
    block = page.locator(f"#test-{code} form.enter-form")
    if isinstance(given, tuple):
        block.locator("[name=value]").fill(given[0])
        block.locator("[name=unit]").fill(given[1])
    else:
        block.locator("[name=qualitative]").select_option(given)
    block.locator("[name=password]").fill(PASSWORD)
    block.get_by_role("button", name="Sign: performed").click()
    expect(page.locator("#messages")).to_contain_text(re.compile(r"recorded and signed|out of specification"))


def review_results(session, codes: list[str]) -> None:
    page = session.page
    for code in codes:
        form = page.locator(f"#test-{code} form.inline-sign")
        form.locator("[name=password]").fill(PASSWORD)
        form.get_by_role("button", name="Sign: reviewed").click()
        expect(page.locator("#messages")).to_contain_text("result reviewed and signed")
