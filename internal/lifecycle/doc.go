// Package lifecycle is the destruction/disposal stage of medsec and the map
// of where a patient's data lives: retention rules per data class with legal
// holds, the retention run that destroys what has expired (crypto-shredding
// a whole patient, deleting sealed rows otherwise) and signs a destruction
// certificate, patients' requests (erasure, a copy of their own record, the
// access history of their record), overdue alerts, and the data map
// (`medsec trace`).
//
// It answers the paper's Table 2 threats of the destruction/disposal stage —
// data kept by the hospital after it must be destroyed, data handed on for
// destruction to yet another party — at the locations where data ends its
// life: 4 and 6 (HIS and main server) for the hospital's own copies, and,
// through the Source hooks, 8, 10 and 11 (pharmacies, other hospitals,
// agencies: package provision), 2 (gateway queues), 5 (imaging) and the AI
// datasets, each of which reports its copies to the data map (DESIGN rule 4,
// lineage).
//
// Every patient datum is reached through the one door (records.Door):
// counting, deleting and shredding are decided by the policy and audited in
// the transaction of the change. The retention schedule is data: the
// example profiles kr and us (profiles/*.yaml) are starting points a
// hospital adopts and edits, never rules built into the code.
package lifecycle
