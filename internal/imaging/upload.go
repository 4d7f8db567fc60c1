package imaging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"

	"github.com/medsec/medsec/internal/guard"
	"github.com/medsec/medsec/internal/identity"
)

// ImportRoles may bring media in through the import API: the clinicians
// who receive a patient's CD, the front desk that takes it over the
// counter, and the IT and security staff who run the intake. Others
// (pharmacists, researchers, external maintainers) get ErrNotImporter.
//
// The Cedar policy cannot decide this: its every action is on one
// patient's data, and an upload's patients are known only once its files
// are read. What the files hold is then written by the import job
// ("system-imaging-import" in policies/stewardship.cedar), and read by
// staff only as the policy lets them.
var ImportRoles = []string{identity.RolePhysician, identity.RoleNurse, identity.RoleAdministrative, identity.RoleITAdmin, identity.RoleSecurityOfficer}

// ErrNotImporter: the member of staff's role may not bring media in
// (ImportRoles). HTTP 403. The refusal is audited.
var ErrNotImporter = errors.New("your role may not bring imaging media in: ask a physician, nurse, the front desk, IT or the security officer")

// MediaUpload is the media kind of every import through the API.
const MediaUpload = "upload"

// maxUploadName bounds the name of an upload.
const maxUploadName = 255

// UploadRequest is one file sent to the import API.
type UploadRequest struct {
	// Name is the file's name as sent ("study.zip", "IM0001.dcm"); only
	// its last element is kept, "upload" when empty. It names the file in
	// the report and, sealed, in quarantine; the scanner checks its
	// extension against the content.
	Name string
	// Body is the whole file: one DICOM file, a zip archive or an .iso
	// image. It is read in place (archives too) and never written out
	// unsealed.
	Body []byte
	// Origin says where the media came from, as Request.Origin.
	Origin string
	// Operator is the member of staff who sent it, as their session
	// authenticated them; their role must be one of ImportRoles.
	Operator identity.Principal
}

// ImportUpload imports one uploaded file exactly as Import imports media
// (media kind "upload"): the scan, the per-file outcomes, the store
// through the door, the quarantine, the audit event and the report are
// the same. A caller whose role is not in ImportRoles gets ErrNotImporter
// and an audited refusal; nothing is read.
func (in *Intake) ImportUpload(ctx context.Context, up UploadRequest) (*Report, error) {
	who := up.Operator
	if err := in.checkImporter(ctx, who); err != nil {
		return nil, err
	}
	origin, err := checkOrigin(up.Origin)
	if err != nil {
		return nil, err
	}
	name, err := uploadName(up.Name)
	if err != nil {
		return nil, err
	}
	run := in.newRun(origin, MediaUpload, who.ID, who.Role, who.Source)
	return in.importMedia(ctx, run, func(s *guard.Scanner) (*guard.Report, error) {
		return s.ScanReader(ctx, name, bytes.NewReader(up.Body))
	})
}

// uploadName keeps the last element of a printable name.
func uploadName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return MediaUpload, nil
	}
	if len(name) > maxUploadName || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return "", fmt.Errorf("%w: the file name must be 1 to %d printable characters", ErrInvalid, maxUploadName)
	}
	base := path.Base(strings.ReplaceAll(name, `\`, "/"))
	if base == "." || base == ".." || base == "/" {
		return MediaUpload, nil
	}
	return base, nil
}

// checkImporter refuses, audited, a caller whose role may not bring media
// in.
func (in *Intake) checkImporter(ctx context.Context, who identity.Principal) error {
	if who.Verified() && slices.Contains(ImportRoles, who.Role) {
		return nil
	}
	return in.refuse(ctx, who, "Import/"+MediaUpload, "imaging.import", ErrNotImporter)
}
