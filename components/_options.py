"""Resource options every component uses: children parented to the component, stateful children protected in prod."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi


def child(parent: pulumi.Resource, *, depends_on: Sequence[pulumi.Resource] = (),
          delete_before_replace: bool = True) -> pulumi.ResourceOptions:
    """Children carry fixed physical names (``{name}-{stack}``): a replacement must delete the old one first, or the
    create fails with "already exists" (rule DEPLOY-REPLACE)."""
    return pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on) or None,
                                  delete_before_replace=delete_before_replace)


def stateful(parent: pulumi.Resource, protect: bool, *, depends_on: Sequence[pulumi.Resource] = (),
             ignore_changes: Sequence[str] = ()) -> pulumi.ResourceOptions:
    """A child holding data: in prod ``protect`` blocks ``pulumi destroy`` and ``retain_on_delete`` keeps the cloud
    resource even if it leaves the program; in dev both are off so the stack is fully destroyable, and a replacement
    deletes first (fixed names). A protected resource is never replaced by an update: the plan lists them."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect,
                                  depends_on=list(depends_on) or None, ignore_changes=list(ignore_changes) or None,
                                  delete_before_replace=not protect)
