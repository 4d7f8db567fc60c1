package dicomdeid_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/medsec/medsec/internal/imaging/dicomdeid"
	"github.com/medsec/medsec/internal/imaging/dicomtest"
)

func ExampleDeidentifier_File() {
	ins, _ := dicomtest.Generate(dicomtest.Options{Seed: 1, Patients: 1, SeriesPerStudy: 1, InstancesPerSeries: 1})
	d, err := dicomdeid.New(dicomdeid.Options{
		ProjectSecret:                   []byte("a project secret of at least 32 bytes"),
		RetainLongitudinalModifiedDates: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var out bytes.Buffer
	rep, err := d.File(context.Background(), bytes.NewReader(ins[0].Data), &out)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(strings.HasPrefix(rep.Pseudonym, "ANON"), strings.HasPrefix(rep.StudyInstanceUID, "2.25."))
	fmt.Println(bytes.Contains(out.Bytes(), []byte(ins[0].Patient.ID)))
	// Output:
	// true true
	// false
}
