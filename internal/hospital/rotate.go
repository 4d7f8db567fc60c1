package hospital

import (
	"context"
	"fmt"

	"github.com/medsec/medsec/internal/audit"
	"github.com/medsec/medsec/internal/identity"
	"github.com/medsec/medsec/internal/keys"
)

// RotateKEK makes a new key-encryption key active, re-wraps every data key
// under it and retires the old versions, and audits it (success or
// failure) as actor. Backups made before it can no longer open a data key
// destroyed since they were made, once every old copy of the key file is
// destroyed too.
func (h *Hospital) RotateKEK(ctx context.Context, actor, source string) (keys.RotationReport, error) {
	rep, err := h.Keys.Rotate(ctx)
	outcome, reason := audit.Success, fmt.Sprintf("new KEK %s, %d data keys re-wrapped, retired %v", rep.NewKeyID, rep.Rewrapped, rep.Retired)
	if err != nil {
		outcome, reason = audit.Failed, err.Error()
	}
	if _, aerr := h.Audit.Append(ctx, audit.Event{Actor: actor, Role: identity.RoleSystem, Action: "keys.rotate",
		Outcome: outcome, Source: source, Reason: reason}); aerr != nil && err == nil {
		err = aerr
	}
	return rep, err
}
