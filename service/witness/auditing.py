"""What `migex audit verify` and `migex audit prove` report about witnesses.

Two questions: does the checkpoint an auditor checks meet the witness policy, and
is the log's export consistent with the checkpoints its witnesses cosigned before?
A log rewritten after a witness cosigned it cannot reproduce that checkpoint's root
at its size, even when every checkpoint was re-signed with the log's own key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.audit.checkpoint import verify_checkpoint
from service.audit.offline import VerifyReport, verify_export
from service.witness.policy import Policy, evaluate


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def policy_finding(policy: Policy, note: str) -> Finding:
    """Whether the checkpoint ``note`` meets ``policy``, and which witnesses cosigned it."""
    report = evaluate(policy, note)
    names = ", ".join(sorted(report.cosigned)) or "no witness of the policy"
    verdict = "meets" if report.met else "does NOT meet"
    text = f"the checkpoint {verdict} the witness policy: cosigned by {names}"
    if report.invalid:
        text += f"; cosignatures that do not verify: {', '.join(sorted(report.invalid))}"
    return Finding(report.met, text)


def cosigned_findings(
    export: Callable[[], Iterable[bytes]],
    vkey: str,
    cosigned: Iterable[tuple[str, str]],
    policy: Policy | None,
) -> list[Finding]:
    """Check the export against each earlier cosigned checkpoint (label, note).

    ``export`` opens the export afresh for each. Each note must be signed by the
    log's key ``vkey``; its cosigners are named from ``policy`` when given.
    """
    findings = []
    for label, note in cosigned:
        cp = verify_checkpoint(note, vkey)
        who = _cosigners(policy, note) if policy is not None else label
        report: VerifyReport = verify_export(export(), note, vkey)
        if report.ok:
            findings.append(
                Finding(True, f"consistent with the checkpoint of size {cp.size} cosigned by {who}")
            )
        else:
            findings.append(
                Finding(
                    False,
                    f"INCONSISTENT with the checkpoint of size {cp.size} cosigned by {who}: "
                    f"{report.reason}",
                )
            )
    return findings


def _cosigners(policy: Policy, note: str) -> str:
    names = sorted(evaluate(policy, note).cosigned)
    return ", ".join(names) if names else "no witness of the policy"
