package text

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

type kt struct {
	Kind Kind
	Text string
}

func found(s string) []kt {
	_, fs := NewRedactor(Options{}).Redact(s)
	out := []kt{}
	for _, f := range fs {
		out = append(out, kt{f.Kind, f.Text})
	}
	return out
}

// TestFind pins what is and is not protected health information in short,
// typical sentences. Each case lists every finding expected, so a false
// finding fails the test as much as a miss.
func TestFind(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []kt
	}{
		{"iso date", "Admitted 2021-03-14.", []kt{{Date, "2021-03-14"}}},
		{"day first", "Seen 14/03/2021 in clinic.", []kt{{Date, "14/03/2021"}}},
		{"month name", "Surgery on March 14, 2021 went well.", []kt{{Date, "March 14, 2021"}}},
		{"day month year", "MRI 14 Mar 2021: no mass.", []kt{{Date, "14 Mar 2021"}}},
		{"korean full date", "2021년 3월 14일 입원함.", []kt{{Date, "2021년 3월 14일"}}},
		{"korean month day", "3월 14일에 퇴원 예정.", []kt{{Date, "3월 14일"}}},
		{"bare day/month with context", "Follow-up on 6/5 in clinic.", []kt{{Date, "6/5"}}},
		{"lab pair is not a date", "AST/ALT 6/5, power 5/5, pain 3/10.", []kt{}},
		{"vitals are not dates", "BP 120/80, HR 72, SpO2 96%, T 36.8.", []kt{}},
		{"dose and lab values", "Metformin 500 mg BID. HbA1c 6.5%. Glucose 110 mg/dL.", []kt{}},
		{"icd and loinc codes", "Dx K81.0, E11.9; LOINC 4548-4 sent.", []kt{}},
		{"age over 89", "A 92-year-old woman, aged 95 per chart.", []kt{{Age, "92"}, {Age, "95"}}},
		{"korean age", "92세 여자 환자.", []kt{{Age, "92"}}},
		{"age 89 is not PHI", "An 89-year-old man with HR 92.", []kt{}},
		{"korean mobile", "연락처 010-1234-5678", []kt{{Phone, "010-1234-5678"}}},
		{"seoul landline", "Tel 02-123-4567.", []kt{{Phone, "02-123-4567"}}},
		{"international", "Call +82-10-1234-5678 or +1 617 555 0143.", []kt{{Phone, "+82-10-1234-5678"}, {Phone, "+1 617 555 0143"}}},
		{"us parenthesized", "Fax (617) 555-0143 today.", []kt{{Phone, "(617) 555-0143"}}},
		{"email", "Write to jane.doe@example.org.", []kt{{Email, "jane.doe@example.org"}}},
		{"url", "See https://portal.example.org/x?y=1.", []kt{{URL, "https://portal.example.org/x?y=1"}}},
		{"ipv4 and ipv6", "From 192.168.0.12 and 2001:db8::17 at 12:30:45.", []kt{{IP, "192.168.0.12"}, {IP, "2001:db8::17"}}},
		{"rrn with valid check digit", "주민등록번호 520314-1526019", []kt{{RRN, "520314-1526019"}}},
		{"rrn after 2020 without check digit", "주민번호 210304-4252763", []kt{{RRN, "210304-4252763"}}},
		{"rrn unlabeled, bad check digit", "번호: 880412-1291704", []kt{{RRN, "880412-1291704"}}},
		{"rrn impossible date", "검체 881332-1291704", []kt{}},
		{"rrn gender digit 9", "검체 880412-9291704", []kt{}},
		{"ssn", "SSN 219-09-9999 on file.", []kt{{SSN, "219-09-9999"}}},
		{"ssn never issued", "Ref 666-12-3456 and 000-12-3456.", []kt{}},
		{"mrn", "MRN: 00482913", []kt{{MRN, "00482913"}}},
		{"korean mrn", "등록번호 10234567", []kt{{MRN, "10234567"}}},
		{"account", "Acct #: 7730018842", []kt{{Account, "7730018842"}}},
		{"health plan", "Member ID XBH847203115", []kt{{HealthPlan, "XBH847203115"}}},
		{"license", "면허번호 제 58213 호", []kt{{License, "58213"}}},
		{"device", "Pump serial number PJN7724018 checked.", []kt{{Device, "PJN7724018"}}},
		{"korean address", "주소: 서울특별시 강남구 테헤란로 123 (06236)", []kt{{Address, "서울특별시 강남구 테헤란로 123"}, {Postal, "06236"}}},
		{"us address", "Lives at 48 Orchard Lane, Northampton, MA 01060.", []kt{{Address, "48 Orchard Lane, Northampton, MA"}, {Postal, "01060"}}},
		{"five digits alone are not postal", "Platelets 25000 today.", []kt{}},
		{"doctor", "Seen by Dr. Okafor today.", []kt{{Name, "Okafor"}}},
		{"western name", "Margaret Sullivan was admitted.", []kt{{Name, "Margaret Sullivan"}}},
		{"relative", "Her daughter Karen visited.", []kt{{Name, "Karen"}}},
		{"credential", "Signed, K. Brennan, RN", []kt{{Name, "K. Brennan"}}},
		{"romanized korean", "Kim Min-su and Lee Seo-yeon attended.", []kt{{Name, "Kim Min-su"}, {Name, "Lee Seo-yeon"}}},
		{"given name first", "Referred Seo-yeon Lee for review.", []kt{{Name, "Seo-yeon Lee"}}},
		{"hangul with title", "김민수 님과 보호자 이서연 씨가 내원함.", []kt{{Name, "김민수"}, {Name, "이서연"}}},
		{"hangul glued title", "박지훈씨는 퇴원함.", []kt{{Name, "박지훈"}}},
		{"hangul patient label", "환자 최영희(F/78)", []kt{{Name, "최영희"}}},
		{"compound surname", "집도의 남궁민 교수", []kt{{Name, "남궁민"}}},
		{"mention repeated", "Mr. Alvarez is 67. Alvarez lives alone.", []kt{{Name, "Alvarez"}, {Name, "Alvarez"}}},
		{"eponyms", "Parkinson's disease, Hodgkin lymphoma, Bell's palsy, Foley catheter, Alzheimer dementia, Crohn disease, Down syndrome, Apgar 9.", []kt{}},
		{"korean clinical words", "정상 소견. 조영제 투여 후 신장 기능 이상 없음. 전신마취 하 시행.", []kt{}},
		{"sweep repeats a labelled number", "MRN 00482913. Old chart 00482913 merged.", []kt{{MRN, "00482913"}, {MRN, "00482913"}}},
		{"middle initial", "Referred by Dr. Jane Q. Public.", []kt{{Name, "Jane Q. Public"}}},
		{"apostrophe and hyphen", "Spoke with her sister, Mary-Ann O'Neil.", []kt{{Name, "Mary-Ann O'Neil"}}},
		{"last, first in capitals", "JOHNSON, ROBERT  DOB 01/02/1950", []kt{{Name, "JOHNSON, ROBERT"}, {Date, "01/02/1950"}}},
		{"possessive name", "Tom's wife called. Her husband, Tom, agreed.", []kt{{Name, "Tom"}, {Name, "Tom"}}},
		{"city alone is not an address", "He lives in Boston with his wife.", []kt{}},
		{"fraction is not a date", "Take 1/2 tablet.", []kt{}},
		{"day-month-year with dashes", "Appointment: 12-Apr-2024.", []kt{{Date, "12-Apr-2024"}}},
		{"ordinal of month", "Seen on the 3rd of March.", []kt{{Date, "3rd of March"}}},
		{"glued labels", "MRN#12345678 and MRN:87654321.", []kt{{MRN, "12345678"}, {MRN, "87654321"}}},
		{"bare phone digits after label", "Phone 6175550143.", []kt{{Phone, "6175550143"}}},
		{"spelled age", "A ninety-two year old man.", []kt{{Age, "ninety-two"}}},
		{"korean dotted date", "2024. 3. 14. 내원.", []kt{{Date, "2024. 3. 14."}}},
		{"korean age label", "나이: 95", []kt{{Age, "95"}}},
		{"korean sex/age after name", "홍길동(남, 45세) 내원.", []kt{{Name, "홍길동"}}},
		{"family name with glued title", "김씨가 왔다. 최 간호사 확인. 조교수 회의.", []kt{{Name, "김"}, {Name, "최"}}},
		{"korean label before latin name", "보호자 John Smith 동반.", []kt{{Name, "John Smith"}}},
		{"seoul number in parentheses", "전화 (02) 123-4567", []kt{{Phone, "(02) 123-4567"}}},
		{"po box", "PO Box 1234, Springfield, IL 62701", []kt{{Address, "PO Box 1234, Springfield, IL"}, {Postal, "62701"}}},
		{"directional suffix", "1600 Pennsylvania Avenue NW, Washington, DC 20500", []kt{{Address, "1600 Pennsylvania Avenue NW, Washington, DC"}, {Postal, "20500"}}},
		{"capitals, unknown surname", "PATIENT: JOHN KOWALCZYK  DOB 01/02/1950", []kt{{Name, "JOHN KOWALCZYK"}, {Date, "01/02/1950"}}},
		{"capitals, surname first", "KOWALCZYK, JOHN seen today.", []kt{{Name, "KOWALCZYK, JOHN"}}},
		{"given name inside a sentence", "Called Jennifer about the results.", []kt{{Name, "Jennifer"}}},
		{"compact day-month-year", "Admit 05MAR2024, discharged 9Mar24.", []kt{{Date, "05MAR2024"}, {Date, "9Mar24"}}},
		{"korean slash shorthand", "김영희/여/78 내원", []kt{{Name, "김영희"}}},
		{"initials after titles", "CC: Dr. A. Rahman, Dr. 박", []kt{{Name, "A. Rahman"}, {Name, "박"}}},
		{"weekday and ordinal", "Ran out on Sunday the 12th.", []kt{{Date, "Sunday the 12th"}}},
		{"team before a korean name", "담당: 원무팀 김영란", []kt{{Name, "김영란"}}},
		{"road with side street", "경기도 용인시 수지구 풍덕천로 123번길 45", []kt{{Address, "경기도 용인시 수지구 풍덕천로 123번길 45"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := found(tt.in)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Find(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestRRNCheckDigit(t *testing.T) {
	tests := []struct {
		n    string
		want bool
	}{
		{"5203141526019", true},
		{"7501011830164", true},
		{"5203141526018", false},
		{"2103044252763", false}, // issued after October 2020: random last digit
	}
	for _, tt := range tests {
		if got := rrnCheckDigitOK(tt.n); got != tt.want {
			t.Errorf("rrnCheckDigitOK(%s) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// TestFindOffsets checks that every finding's Text is the slice of the
// input it claims.
func TestFindOffsets(t *testing.T) {
	s := "환자 김민수(남/67세), 2023년 3월 14일 입원. Tel 010-1234-5678, Dr. Park Ji-hoon."
	for _, f := range Find(s) {
		if s[f.Start:f.End] != f.Text {
			t.Errorf("finding %v: text %q, want %q", f.Kind, f.Text, s[f.Start:f.End])
		}
	}
}

// TestNoFindings runs ordinary clinical prose, English and Korean, with no
// protected health information in it: nothing may be redacted.
func TestNoFindings(t *testing.T) {
	for _, s := range []string{
		"Assessment and Plan: Type 2 Diabetes Mellitus, uncontrolled. Increase Lantus to 20 units. Continue Januvia 100 mg. Diabetic Foot Exam normal. Referred to Ophthalmology.",
		"Review of Systems: Constitutional: negative. HEENT: negative. Cardiovascular: Chest pain. Respiratory: Shortness of breath.",
		"Physical Exam: General: Alert, oriented. Neck: Supple. Lungs: Clear to auscultation. Heart: Regular rate and rhythm, no murmur.",
		"Medications: Aspirin 81 mg, Lipitor 40 mg, Lasix 20 mg, Coumadin 5 mg. Allergies: Penicillin (rash), Sulfa.",
		"Labs: Na 138, K 4.1, Cl 101, CO2 24, BUN 18, Cr 1.0, Glucose 142. Troponin < 0.01. INR 2.3. Hgb 13.2 / Hct 39.",
		"CXR: No acute cardiopulmonary process. EKG: Normal sinus rhythm, rate 78, no ST changes. Echo: LVEF 55-60%.",
		"Patient Education: Discussed Heart Healthy Diet. Advised Smoking Cessation. Given Flu Vaccine.",
		"Mini-Mental State Exam 28/30. Montreal Cognitive Assessment 26/30. Glasgow Coma Scale 15.",
		"Hepatitis B Surface Antigen negative. Human Immunodeficiency Virus negative. Herpes Simplex Virus PCR negative.",
		"Will Follow Up with Primary Care. Grace period for Medicare enrollment. Hope Street Clinic.",
		"금일 오전 회진 시 환자 상태 양호함. 흉부 청진상 수포음 없음. 복부 압통 없음. 하지 부종 없음.",
		"혈압 조절 위해 암로디핀 증량. 당화혈색소 7.8%로 인슐린 용량 조정 필요. 영양팀 협진 의뢰.",
		"수술 후 통증 조절 양호. 배액관 유지. 장운동 회복되어 유동식 시작. 보행 연습 시작함.",
		"조영제 알레르기 없음. 신기능 정상. 갑상선 기능 정상. 심전도 정상 동리듬.",
		"신경학적 검사상 이상 소견 없음. 동공 반사 정상. 근력 정상. 감각 이상 없음.",
		"유방 초음파상 양성 결절 소견. 6개월 후 추적 검사 예정. 정기 검진 권유함.",
		"전신 상태 양호. 의식 명료. 활력 징후 안정적. 경과 관찰 중. 한방 치료 병행 중. 안과 진료 예정.",
	} {
		if got := found(s); len(got) > 0 {
			t.Errorf("Find(%q) = %v, want nothing", s, got)
		}
	}
}
