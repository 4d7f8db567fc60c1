package tabular

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// SyntheticColumns are the columns SyntheticHospital writes.
var SyntheticColumns = []string{
	"patient_id", "name", "age", "sex", "zip", "address", "admission_date",
	"discharge_date", "department", "diagnosis", "length_of_stay", "insurance",
}

// district is a Korean administrative district with its postal code range.
type district struct {
	area   string // 시도 and 시군구
	zipLo  int
	zipHi  int
	roads  []string
	weight float64
}

// districts leans to Seoul, where the synthetic hospital is.
var districts = []district{
	{"서울특별시 강남구", 6000, 6399, []string{"테헤란로", "역삼로", "도산대로"}, 9},
	{"서울특별시 서초구", 6500, 6899, []string{"서초대로", "반포대로"}, 7},
	{"서울특별시 송파구", 5500, 5899, []string{"올림픽로", "송파대로"}, 8},
	{"서울특별시 마포구", 3900, 4199, []string{"월드컵로", "양화로"}, 5},
	{"서울특별시 종로구", 3000, 3199, []string{"종로", "세종대로"}, 3},
	{"서울특별시 노원구", 1600, 1899, []string{"동일로", "노원로"}, 6},
	{"부산광역시 해운대구", 48000, 48199, []string{"해운대로", "센텀중앙로"}, 3},
	{"부산광역시 부산진구", 47100, 47399, []string{"중앙대로"}, 2},
	{"대구광역시 수성구", 42000, 42299, []string{"달구벌대로"}, 2},
	{"인천광역시 남동구", 21500, 21699, []string{"인하로"}, 3},
	{"광주광역시 북구", 61000, 61299, []string{"서하로"}, 1},
	{"대전광역시 유성구", 34000, 34199, []string{"대학로"}, 2},
	{"울산광역시 남구", 44600, 44799, []string{"삼산로"}, 1},
	{"경기도 성남시 분당구", 13400, 13699, []string{"판교역로", "불정로"}, 7},
	{"경기도 수원시 영통구", 16500, 16799, []string{"광교로"}, 5},
	{"경기도 고양시 일산동구", 10300, 10499, []string{"중앙로"}, 4},
	{"강원특별자치도 춘천시", 24200, 24499, []string{"중앙로"}, 1},
	{"충청북도 청주시 상당구", 28700, 28799, []string{"상당로"}, 1},
	{"전북특별자치도 전주시 완산구", 54900, 55099, []string{"팔달로"}, 1},
	{"경상남도 창원시 성산구", 51400, 51599, []string{"중앙대로"}, 1},
	{"제주특별자치도 제주시", 63100, 63399, []string{"연북로"}, 1},
	{"세종특별자치시", 30000, 30199, []string{"한누리대로"}, 1},
}

// department is a clinical department, its typical diagnoses (ICD-10) and
// mean length of stay in days.
type department struct {
	name     string
	codes    []string
	meanStay float64
	weight   float64
}

var departments = []department{
	{"Internal Medicine", []string{"E11.9", "I10", "K21.0", "J18.9", "N39.0", "E78.5", "K29.7"}, 5, 16},
	{"Cardiology", []string{"I10", "I20.9", "I21.4", "I25.1", "I48.9", "I50.9"}, 6, 8},
	{"General Surgery", []string{"K35.8", "K40.9", "K80.2", "C18.9", "C16.9"}, 6, 9},
	{"Orthopedics", []string{"M17.1", "M51.1", "S72.0", "S82.2", "M48.0"}, 9, 9},
	{"Obstetrics and Gynecology", []string{"O80", "O34.2", "N80.0", "D25.9", "O20.0"}, 3, 6},
	{"Pediatrics", []string{"J20.9", "A09.9", "J06.9", "P59.9", "J45.9"}, 3, 7},
	{"Neurology", []string{"I63.9", "G40.9", "G20", "G43.9", "G45.9"}, 8, 6},
	{"Oncology", []string{"C34.9", "C50.9", "C16.9", "C22.0", "C61"}, 8, 7},
	{"Psychiatry", []string{"F32.9", "F20.9", "F41.1", "F10.2"}, 20, 3},
	{"Emergency Medicine", []string{"S06.0", "T14.9", "R07.4", "R55", "S52.5"}, 1, 10},
	{"Urology", []string{"N40", "N20.0", "C67.9", "N39.0"}, 4, 4},
	{"Ophthalmology", []string{"H25.9", "H40.1", "H35.3"}, 1, 4},
	{"Dermatology", []string{"L20.9", "L40.0", "L50.9"}, 2, 2},
	{"Otorhinolaryngology", []string{"H66.9", "J32.9", "J35.0", "H81.1"}, 3, 3},
	{"Rehabilitation Medicine", []string{"Z50.1", "I69.3", "G82.2"}, 21, 2},
}

// DepartmentHierarchyCSV is a hierarchy file for SyntheticHospital's
// department column: department → division → *.
const DepartmentHierarchyCSV = `Internal Medicine;Medical;*
Cardiology;Medical;*
Neurology;Medical;*
Oncology;Medical;*
Psychiatry;Medical;*
Pediatrics;Medical;*
Dermatology;Medical;*
Rehabilitation Medicine;Medical;*
Emergency Medicine;Medical;*
General Surgery;Surgical;*
Orthopedics;Surgical;*
Obstetrics and Gynecology;Surgical;*
Urology;Surgical;*
Ophthalmology;Surgical;*
Otorhinolaryngology;Surgical;*
`

var surnames = []string{"김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황", "안", "송", "류", "홍"}
var givenSyllables = []string{"민", "서", "지", "현", "준", "우", "영", "수", "진", "하", "윤", "은", "도", "연", "재", "희", "성", "주", "예", "원"}

// ageWeights are the shares of inpatients by decade, 0–9 to 90–104: a
// hospital's patients are older than the population.
var ageWeights = []float64{8, 5, 8, 10, 12, 16, 18, 14, 7, 2}

type patient struct {
	id, name, sex, zip, address, insurance string
	birthYear                              int
}

// SyntheticHospital makes n realistic, entirely invented inpatient
// admissions of a Korean hospital: patients (some admitted more than once)
// with age, sex, postal code and street address, admission and discharge
// dates in 2022–2024, department, ICD-10 diagnosis, length of stay and
// insurance. The same seed gives the same table. Use it for benchmarks,
// tests and the demo; no row describes a real person.
func SyntheticHospital(n int, seed uint64) *Table {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pats := make([]patient, max(n*7/10, 1))
	for i := range pats {
		pats[i] = newPatient(rng, i)
	}
	t := &Table{Columns: append([]string(nil), SyntheticColumns...), Rows: make([][]string, n)}
	start := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	for r := range t.Rows {
		p := &pats[r%len(pats)]
		if r >= len(pats) {
			p = &pats[rng.IntN(len(pats))]
		}
		t.Rows[r] = admission(rng, p, start)
	}
	return t
}

func newPatient(rng *rand.Rand, i int) patient {
	d := &districts[weighted(rng, len(districts), func(i int) float64 { return districts[i].weight })]
	decade := weighted(rng, len(ageWeights), func(i int) float64 { return ageWeights[i] })
	age := decade*10 + rng.IntN(10)
	if decade == 9 {
		age = 90 + rng.IntN(15)
	}
	p := patient{
		id:        "P" + pad(10000000+i*7+rng.IntN(7), 8),
		name:      surnames[rng.IntN(len(surnames))] + givenSyllables[rng.IntN(len(givenSyllables))] + givenSyllables[rng.IntN(len(givenSyllables))],
		sex:       []string{"M", "F"}[rng.IntN(2)],
		zip:       pad(d.zipLo+rng.IntN(d.zipHi-d.zipLo+1), 5),
		insurance: insurance(rng),
		birthYear: 2023 - age,
	}
	p.address = d.area + " " + d.roads[rng.IntN(len(d.roads))] + " " + strconv.Itoa(1+rng.IntN(300))
	return p
}

func admission(rng *rand.Rand, p *patient, start time.Time) []string {
	dep := pickDepartment(rng, p)
	admitted := start.AddDate(0, 0, rng.IntN(3*365))
	stay := int(math.Floor(rng.ExpFloat64() * dep.meanStay))
	age := max(admitted.Year()-p.birthYear, 0)
	return []string{
		p.id, p.name, strconv.Itoa(age), p.sex, p.zip, p.address,
		admitted.Format("2006-01-02"), admitted.AddDate(0, 0, stay).Format("2006-01-02"),
		dep.name, dep.codes[rng.IntN(len(dep.codes))], strconv.Itoa(stay), p.insurance,
	}
}

// pickDepartment draws a department that fits the patient: obstetrics only
// for women of child-bearing age, pediatrics only for children.
func pickDepartment(rng *rand.Rand, p *patient) *department {
	age := 2023 - p.birthYear
	for {
		d := &departments[weighted(rng, len(departments), func(i int) float64 { return departments[i].weight })]
		switch {
		case strings.HasPrefix(d.name, "Obstetrics") && (p.sex != "F" || age < 15 || age > 55):
		case d.name == "Pediatrics" && age > 17:
		case d.name != "Pediatrics" && age < 15 && rng.IntN(3) > 0:
		default:
			return d
		}
	}
}

func insurance(rng *rand.Rand) string {
	switch x := rng.IntN(100); {
	case x < 94:
		return "NHI"
	case x < 98:
		return "MedicalAid"
	case x < 99:
		return "Auto"
	default:
		return "Industrial"
	}
}

func weighted(rng *rand.Rand, n int, weight func(int) float64) int {
	var total float64
	for i := range n {
		total += weight(i)
	}
	x := rng.Float64() * total
	for i := range n {
		if x -= weight(i); x < 0 {
			return i
		}
	}
	return n - 1
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}

// SyntheticSpec is the spec the 1,000,000-row benchmark and the demo use on
// SyntheticHospital's table: k-anonymity with k, 8 quasi-identifiers and at
// most maxSuppression of the records suppressed; names and discharge dates
// dropped, patient identifiers pseudonymized.
func SyntheticSpec(k int, maxSuppression float64) Spec {
	dept, err := ParseHierarchy(strings.NewReader(DepartmentHierarchyCSV))
	if err != nil {
		panic("tabular: built-in department hierarchy: " + err.Error()) // a constant: cannot fail
	}
	return Spec{
		QuasiIdentifiers: []QI{
			{Column: "age", Hierarchy: "age"},
			{Column: "sex", Hierarchy: "sex"},
			{Column: "zip", Hierarchy: "zip"},
			{Column: "address", Hierarchy: "district"},
			{Column: "admission_date", Hierarchy: "date"},
			{Column: "department", HierarchyFile: "department.csv", Custom: dept},
			{Column: "diagnosis", Hierarchy: "icd10"},
			{Column: "length_of_stay", Hierarchy: "interval(7)"},
		},
		K:              k,
		MaxSuppression: maxSuppression,
		Pseudonymize:   []string{"patient_id"},
		Drop:           []string{"name", "discharge_date"},
		Keep:           []string{"insurance"},
	}
}
