package tabular_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/medsec/medsec/internal/deid/tabular"
)

func ExampleAnonymize() {
	in, _ := tabular.ReadCSV(strings.NewReader(`patient_id,name,age,zip,diagnosis
P001,김민서,34,06236,E11.9
P002,이지현,36,06241,I10
P003,박준우,38,06252,E11.9
P004,최서연,41,06311,J18.9
P005,정하윤,47,06302,I10
P006,강도윤,44,06325,E78.5
`))
	spec := tabular.Spec{
		QuasiIdentifiers: []tabular.QI{
			{Column: "age", Hierarchy: "age"},
			{Column: "zip", Hierarchy: "zip"},
		},
		K:            3,
		Drop:         []string{"name"},
		Pseudonymize: []string{"patient_id"},
		Keep:         []string{"diagnosis"},
	}
	secret := []byte("a fresh random per-dataset secret!") // use crypto/rand in real code
	res, err := tabular.Anonymize(context.Background(), in, spec, secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, row := range res.Table.Rows {
		fmt.Println(row[1:]) // the pseudonym differs with every secret
	}
	fmt.Printf("k=%d, prosecutor risk %.2f\n", res.Reached.K, res.Risk.ProsecutorMax)
	// Output:
	// [30-39 062** E11.9]
	// [30-39 062** I10]
	// [30-39 062** E11.9]
	// [40-49 063** J18.9]
	// [40-49 063** I10]
	// [40-49 063** E78.5]
	// k=3, prosecutor risk 0.33
}

func ExampleMeasureRisk() {
	in, _ := tabular.ReadCSV(strings.NewReader("age,sex,zip\n40,F,06236\n40,F,06236\n51,F,06236\n"))
	risk, _ := tabular.MeasureRisk(in, []string{"age", "sex", "zip"}, tabular.RiskOptions{Threshold: 0.5})
	fmt.Printf("max %.2f, average %.2f, at risk %.2f\n", risk.ProsecutorMax, risk.ProsecutorAvg, risk.AtRisk)
	d := risk.Drivers[0]
	fmt.Printf("without %s: max %.2f, at risk %.2f\n", d.QI, d.ProsecutorMax, d.AtRisk)
	// Output:
	// max 1.00, average 0.67, at risk 0.33
	// without age: max 0.33, at risk 0.00
}
