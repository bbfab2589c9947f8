package handler

import "sync"

// Added when the CRM builds FerretDB v1.24.2 (scripts/infra.sh).
//
// MongoDB applies findAndModify and update to a document atomically: two
// clients racing on {_id: x, status: "pool"} cannot both win. FerretDB 1.24
// reads the matching documents, then writes them back by _id, with nothing in
// between (see the TODOs for FerretDB issue 3040 in its handler), so both can.
// The services rely on the MongoDB guarantee; one lock per collection around
// the read-and-write gives FerretDB the same.
var crmCollectionLocks sync.Map

func lockCollection(db, coll string) func() {
	v, _ := crmCollectionLocks.LoadOrStore(db+"."+coll, &sync.Mutex{})
	mu := v.(*sync.Mutex)
	mu.Lock()

	return mu.Unlock
}
