package tabular

import (
	"context"
	"testing"
	"time"
)

func TestSmoke(t *testing.T) {
	tab := SyntheticHospital(5000, 1)
	secret := make([]byte, 32)
	start := time.Now()
	res, err := Anonymize(context.Background(), tab, SyntheticSpec(5, 0.05), secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(time.Since(start))
	for _, l := range res.Explanation {
		t.Log(l)
	}
	t.Logf("%+v", res.Risk)
	t.Logf("%+v", res.Loss)
	t.Logf("%+v", res.Search)
	for _, r := range res.Table.Rows[:5] {
		t.Log(r)
	}
}
