package devices

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/medsec/medsec/internal/phd"
)

// Paths of the device authority's HTTP API, relative to where it is
// mounted (medsec serve mounts it at /devices).
const (
	PathEnroll = "/v1/enroll"
	PathRenew  = "/v1/renew"
	PathStatus = "/v1/status"
)

// Refusal is the JSON body of every refused request of the device and
// gateway APIs: a stable reason code and what to do about it.
type Refusal struct {
	Reason phd.Reason `json:"reason"`
	Detail string     `json:"detail,omitempty"`
}

func (r *Refusal) Error() string { return string(r.Reason) + ": " + r.Detail }

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// enrollmentJSON is the body of an enrollment or renewal answer.
type enrollmentJSON struct {
	Serial      string `json:"serial"`
	Kind        Kind   `json:"kind"`
	Patient     string `json:"patient,omitempty"`
	Certificate string `json:"certificate"`
	CA          string `json:"ca"`
	HospitalKey string `json:"hospital_key,omitempty"`
}

type csrJSON struct {
	Token string `json:"token,omitempty"`
	CSR   string `json:"csr"` // base64 DER
}

// api serves enrollment, renewal and the status list over HTTPS.
type api struct {
	a           *Authority
	verifier    *Verifier
	hospitalKey []byte // PEM, handed to devices at enrollment
	log         *slog.Logger
}

// Handler returns the device authority's HTTP API. Enrollment needs only
// the token; renewal needs the current certificate as TLS client
// certificate; the status list is for active gateways only.
func (a *Authority) Handler(hospitalKey *ecdh.PublicKey, log *slog.Logger) (http.Handler, error) {
	pemKey, err := HospitalKeyPEM(hospitalKey)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	srv := &api{a: a, verifier: NewVerifier(a.CA()), hospitalKey: pemKey, log: log}
	r := chi.NewRouter()
	r.Post(PathEnroll, srv.enroll)
	r.Post(PathRenew, srv.renew)
	r.Get(PathStatus, srv.status)
	return r, nil
}

func readCSR(r *http.Request) (csrJSON, []byte, error) {
	var in csrJSON
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		return in, nil, fmt.Errorf("%w: body must be JSON {token, csr}", ErrBadRequest)
	}
	der, err := base64.StdEncoding.DecodeString(in.CSR)
	if err != nil {
		return in, nil, fmt.Errorf("%w: csr must be base64 DER", ErrBadRequest)
	}
	return in, der, nil
}

func (api *api) enroll(w http.ResponseWriter, r *http.Request) {
	in, der, err := readCSR(r)
	if err == nil {
		var iss *Issued
		if iss, err = api.a.Enroll(r.Context(), in.Token, der); err == nil {
			WriteJSON(w, http.StatusCreated, api.answer(iss))
			return
		}
	}
	api.refuse(w, err)
}

func (api *api) renew(w http.ResponseWriter, r *http.Request) {
	id, err := api.clientIdentity(r)
	if err != nil {
		api.refuse(w, err)
		return
	}
	_, der, err := readCSR(r)
	if err == nil {
		var iss *Issued
		if iss, err = api.a.Renew(r.Context(), id, der); err == nil {
			WriteJSON(w, http.StatusOK, api.answer(iss))
			return
		}
	}
	api.refuse(w, err)
}

func (api *api) answer(iss *Issued) enrollmentJSON {
	out := enrollmentJSON{Serial: iss.Device.Serial, Kind: iss.Device.Kind, Patient: iss.Device.Patient,
		Certificate: string(iss.CertificatePEM), CA: string(iss.CAPEM)}
	if iss.Device.Kind == KindDevice {
		out.HospitalKey = string(api.hospitalKey)
	}
	return out
}

// clientIdentity verifies the TLS client certificate of r.
func (api *api) clientIdentity(r *http.Request) (Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return Identity{}, &phd.Error{Reason: ReasonCertificateMissing, Detail: "present the certificate the hospital issued"}
	}
	return api.verifier.Verify(r.TLS.PeerCertificates[0], api.a.now())
}

// ActiveGateway verifies that the TLS client of r is an enrolled, active
// gateway and returns its registry entry. The ingestion API uses it too.
func (a *Authority) ActiveGateway(ctx context.Context, v *Verifier, r *http.Request) (Device, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return Device{}, &phd.Error{Reason: ReasonCertificateMissing, Detail: "a gateway must present its client certificate"}
	}
	id, err := v.Verify(r.TLS.PeerCertificates[0], a.now())
	if err != nil {
		return Device{}, err
	}
	if id.Kind != KindGateway {
		return Device{}, &phd.Error{Reason: ReasonGatewayUntrusted, Detail: "the certificate is not a gateway's"}
	}
	d, err := a.Device(ctx, id.Serial)
	if errors.Is(err, ErrUnknownDevice) {
		return Device{}, &phd.Error{Reason: ReasonGatewayUntrusted, Detail: "gateway " + id.Serial + " is not registered"}
	}
	if err != nil {
		return Device{}, err
	}
	if !publicEqual(d.PublicKey, id.PublicKey) {
		return Device{}, &phd.Error{Reason: ReasonGatewayUntrusted, Detail: "the certificate's key is not the registered one"}
	}
	if d.Status != StatusActive {
		return Device{}, &phd.Error{Reason: ReasonGatewayUntrusted, Detail: "gateway " + id.Serial + " is " + string(d.Status)}
	}
	return d, nil
}

func (api *api) status(w http.ResponseWriter, r *http.Request) {
	if _, err := api.a.ActiveGateway(r.Context(), api.verifier, r); err != nil {
		api.refuse(w, err)
		return
	}
	rev, err := api.a.Revision(r.Context())
	if err != nil {
		api.refuse(w, err)
		return
	}
	if have, err := strconv.ParseInt(r.URL.Query().Get("revision"), 10, 64); err == nil && have == rev {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body, sig, err := api.a.SignedStatusList(r.Context())
	if err != nil {
		api.refuse(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderSignature, base64.StdEncoding.EncodeToString(sig))
	w.Write(body)
}

// HeaderSignature carries the status list's signature.
const HeaderSignature = "Medsec-Signature"

// refuse answers err with its status code and reason.
func (api *api) refuse(w http.ResponseWriter, err error) {
	status, ref := RefusalOf(err)
	if status >= 500 {
		api.log.Error("device API", "err", err)
	}
	WriteJSON(w, status, ref)
}

// RefusalOf maps an error of this package (or a *phd.Error) to an HTTP
// status and the refusal sent to the client.
func RefusalOf(err error) (int, Refusal) {
	var pe *phd.Error
	if errors.As(err, &pe) {
		return statusOfReason(pe.Reason), Refusal{Reason: pe.Reason, Detail: pe.Detail}
	}
	for _, m := range []struct {
		err    error
		status int
		reason phd.Reason
	}{
		{ErrTokenInvalid, http.StatusForbidden, ReasonTokenInvalid},
		{ErrBadRequest, http.StatusBadRequest, ReasonBadRequest},
		{ErrEnrolled, http.StatusConflict, ReasonDeviceEnrolled},
		{ErrInactive, http.StatusForbidden, ReasonDeviceInactive},
		{ErrUnknownDevice, http.StatusNotFound, ReasonDeviceUnknown},
		{ErrTransition, http.StatusConflict, ReasonStatusFinal},
	} {
		if errors.Is(err, m.err) {
			return m.status, Refusal{Reason: m.reason, Detail: err.Error()}
		}
	}
	return http.StatusInternalServerError, Refusal{Reason: phd.ReasonInternal, Detail: "internal error; try again later"}
}

func statusOfReason(r phd.Reason) int {
	switch r {
	case ReasonCertificateMissing:
		return http.StatusUnauthorized
	case ReasonCertificateUntrusted, ReasonCertificateExpired, ReasonGatewayUntrusted, ReasonDeviceRevoked,
		ReasonDeviceSuspended, ReasonDeviceLost, ReasonDeviceUnknown, phd.ReasonBadSignature, phd.ReasonCertificateMismatch:
		return http.StatusForbidden
	case phd.ReasonTooLarge:
		return http.StatusRequestEntityTooLarge
	case phd.ReasonInternal:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}
