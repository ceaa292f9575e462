"""Verifying the audit log: its chain, every stored signed head, and optionally a head kept outside the hub.

Inside the database, the chain and the stored heads catch any edit by someone without the signing key *unless*
they also delete every head that covers the edit (and truncating the tail, then rewriting the chain head row,
leaves nothing to compare with). A head kept elsewhere closes that gap: ``against`` must verify with the hub's
key, its size must still be in the log with the same Merkle root, and the stored head of that size must still
exist. So any rewrite or truncation of the first ``against.tree_size`` records, or deletion of that checkpoint,
fails.

    report = await verify_log(services.audit, services.checkpoints, against=head)
    report.intact, report.problem, report.unsigned_tail
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gateway.audit import AuditLog, Verification
from gateway.checkpoints import CheckpointInvalid, Checkpoints
from gateway.treehead import HeadInvalid, SignedHead


@dataclass(frozen=True)
class LogReport:
    verification: Verification
    heads: int  # signed tree heads checked (stored ones, plus ``against``)
    newest_signed: int  # the largest tree size a signed head covers
    against: SignedHead | None = None

    @property
    def intact(self) -> bool:
        return self.verification.intact

    @property
    def problem(self) -> str | None:
        return self.verification.problem

    @property
    def unsigned_tail(self) -> int:
        """Records after the newest signed head: protected by the hash chain only, until the next head."""
        return max(0, self.verification.records - self.newest_signed)

    def summary(self) -> str:
        report = self.verification
        line = (
            f"audit log intact: {report.records} records, head {report.head_seq} {report.head_hash[:16]}..., "
            f"{self.heads} signed tree heads"
        )
        if self.against is not None:
            line += f"; consistent with the {self.against.describe()} given"
        if self.unsigned_tail:
            line += f"; the last {self.unsigned_tail} records are not under a signed head yet"
        return line


def _failed(problem: str, seq: int | None = None) -> LogReport:
    return LogReport(Verification(False, 0, 0, "", problem, seq), 0, 0)


async def verify_log(audit: AuditLog, checkpoints: Checkpoints, against: SignedHead | None = None) -> LogReport:
    """Check the chain, every stored checkpoint and, when given, an externally kept signed tree head."""
    try:
        stored = await checkpoints.verified()
    except CheckpointInvalid as exc:
        return _failed(str(exc))
    chain = {seq: point.chain_hash for seq, point in stored.items()}
    roots = {seq: point.root_hash for seq, point in stored.items() if point.root_hash is not None}
    if against is not None:
        try:
            against.verify(checkpoints.key_set(), issuer=checkpoints.issuer)
        except HeadInvalid as exc:
            return _failed(f"the tree head given does not verify: {exc}")
        size = against.tree_size
        kept = stored.get(size)
        if size and kept is None:
            chain[size], roots[size] = against.chain_hash, against.root_hash
            report = await audit.verify(chain, roots)
            problem = report.problem or f"the signed tree head of size {size} was deleted from the hub"
            return LogReport(replace(report, intact=False, problem=problem, first_bad_seq=size), len(roots), size)
        if kept is not None and (kept.root_hash, kept.chain_hash) != (against.root_hash, against.chain_hash):
            problem = f"the hub's checkpoint at {size} differs from the signed tree head given: the log was rewritten"
            return _failed(problem, size)
        chain[size], roots[size] = against.chain_hash, against.root_hash
    report = await audit.verify(chain, roots)
    return LogReport(report, len(roots), max(roots, default=0), against)
