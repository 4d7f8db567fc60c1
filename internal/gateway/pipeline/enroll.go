package pipeline

import (
	"context"
	"crypto/ecdh"

	"github.com/medsec/medsec/internal/devices"
	"github.com/medsec/medsec/internal/gateway"
	"github.com/medsec/medsec/internal/phd/device"
)

// EnrollLocal enrols a device on the hospital's own machine: it issues a
// token for patientID and model (audited as by), plays the device (key
// pair, request), redeems the token, and saves the device's credentials
// and counter in dir. Test fleets and demos are made this way; a real
// device runs `medsec device activate` with a token instead.
func EnrollLocal(ctx context.Context, a *devices.Authority, hospitalKey *ecdh.PublicKey, patientID, serial, model string,
	kt device.KeyType, dir, by string) (gateway.FleetDevice, error) {
	tok, err := a.IssueToken(ctx, devices.TokenRequest{Kind: devices.KindDevice, PatientID: patientID, Model: model, By: by})
	if err != nil {
		return gateway.FleetDevice{}, err
	}
	key, err := device.GenerateKey(kt)
	if err != nil {
		return gateway.FleetDevice{}, err
	}
	csr, err := device.CreateCSR(key, serial, model)
	if err != nil {
		return gateway.FleetDevice{}, err
	}
	iss, err := a.Enroll(ctx, tok.Secret, csr)
	if err != nil {
		return gateway.FleetDevice{}, err
	}
	creds := &devices.Credentials{Key: key, Certificate: iss.Certificate, CA: a.CA(), HospitalKey: hospitalKey}
	if err := creds.Save(dir); err != nil {
		return gateway.FleetDevice{}, err
	}
	return gateway.LoadDevice(dir)
}
