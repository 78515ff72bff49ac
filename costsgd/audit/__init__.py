r"""``costsgd.audit``: what Cost-Aware GRPO would save on rollouts a user already logged.

The expected drawn tokens per iteration of each sampler of Algorithm 2
relative to no sampling, :math:`\mathbb E_p[c]/\bar c` (§5.2, Eq. 1), are a
pure function of a pool's advantages and lengths, so they can be computed
from training logs before anything about training changes. numpy only: this
package never imports torch. See docs/audit.md for the file formats, every
key of the result and what an audit cannot know.
"""

from costsgd.audit._errors import AuditInputError
from costsgd.audit._generic import REQUIRED
from costsgd.audit._report import format_table, plot_audit
from costsgd.audit._writer import write_pool_jsonl
from costsgd.audit.batch import analyse_pools
from costsgd.audit.files import FORMATS, PoolSource, audit_files, read_pools
from costsgd.audit.pool import (
    NORMALIZATIONS,
    SAMPLERS,
    Pool,
    PoolAudit,
    analyse_pool,
    group_advantages,
)
from costsgd.audit.summary import REGIME_RULE, Audit, audit, regime

__all__ = [
    "FORMATS",
    "NORMALIZATIONS",
    "REGIME_RULE",
    "REQUIRED",
    "SAMPLERS",
    "Audit",
    "AuditInputError",
    "Pool",
    "PoolAudit",
    "PoolSource",
    "analyse_pool",
    "analyse_pools",
    "audit",
    "audit_files",
    "format_table",
    "group_advantages",
    "plot_audit",
    "read_pools",
    "regime",
    "write_pool_jsonl",
]
