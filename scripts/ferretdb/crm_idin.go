package sqlite

import (
	"fmt"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends/sqlite/metadata"
	"github.com/FerretDB/FerretDB/internal/handler/sjson"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// Added when the CRM builds FerretDB v1.24.2 (scripts/infra.sh).
//
// FerretDB pushes only `{_id: <value>}` down to SQLite; `{_id: {$in: [...]}}`
// scanned the whole collection, so reading N documents by id cost N round
// trips or a scan. This narrows such a query to the _id index. The handler
// still applies the whole filter to what comes back, as for every pushdown.
const crmMaxIDsIn = 1000

func crmIDInClause(filter *types.Document) (string, []any) {
	v, err := filter.Get("_id")
	if err != nil {
		return "", nil
	}

	cond, ok := v.(*types.Document)
	if !ok || cond.Len() != 1 {
		return "", nil
	}

	in, err := cond.Get("$in")
	if err != nil {
		return "", nil
	}

	ids, ok := in.(*types.Array)
	if !ok || ids.Len() == 0 || ids.Len() > crmMaxIDsIn {
		return "", nil
	}

	marks := make([]string, 0, ids.Len())
	args := make([]any, 0, ids.Len())

	for i := 0; i < ids.Len(); i++ {
		id := must.NotFail(ids.Get(i))
		switch id.(type) {
		case string, types.ObjectID:
		default:
			return "", nil
		}

		marks = append(marks, "?")
		args = append(args, string(must.NotFail(sjson.MarshalSingleValue(id))))
	}

	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(marks, ", ")), args
}
