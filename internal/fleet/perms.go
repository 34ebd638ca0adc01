package fleet

import (
	"github.com/nats-io/nats-server/v2/server"
)

// ConsumerName is origin's durable consumer of the decisions stream.
// "moat2-": the consumer acknowledges each decision (AckExplicit); the
// earlier "moat-<origin>" acknowledged all before one (AckAll), which
// cannot be changed in place, and lost a decision delivered to a pull
// request of a client that died (see consumeLoop). An upgraded host
// starts its new consumer from the current state.
func ConsumerName(origin string) string { return consumerPrefix + origin }

const consumerPrefix = "moat2-"

// Permissions are what origin's NATS user may do: publish decisions under
// its own origin only; create the stream (an identical create is a no-op,
// a different one is refused, so it cannot change the stream) and its own
// consumer; read the stream's and the consumers' state; fetch and
// acknowledge through its own consumer. Nothing else: no publishing under
// another origin, no stream update, purge or delete, no message delete,
// no other host's consumer.
func Permissions(fleet, origin string) *server.Permissions {
	cons := ConsumerName(origin)
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			SubjectPrefix(fleet) + origin + ".>",
			"$JS.API.INFO",
			"$JS.API.STREAM.CREATE." + StreamName,
			"$JS.API.STREAM.INFO." + StreamName,
			"$JS.API.CONSUMER.CREATE." + StreamName + "." + cons,
			"$JS.API.CONSUMER.CREATE." + StreamName + "." + cons + ".>",
			"$JS.API.CONSUMER.DURABLE.CREATE." + StreamName + "." + cons,
			"$JS.API.CONSUMER.INFO." + StreamName + ".*",
			"$JS.API.CONSUMER.LIST." + StreamName,
			"$JS.API.CONSUMER.NAMES." + StreamName,
			"$JS.API.CONSUMER.MSG.NEXT." + StreamName + "." + cons,
			"$JS.ACK." + StreamName + "." + cons + ".>",
			// The blocklist bucket: read by all, written by each host
			// under its own key prefix (see Lists).
			"$JS.API.STREAM.CREATE." + listsStream(fleet),
			"$JS.API.STREAM.INFO." + listsStream(fleet),
			"$JS.API.CONSUMER.CREATE." + listsStream(fleet) + ".>",
			"$JS.API.CONSUMER.DELETE." + listsStream(fleet) + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + listsStream(fleet) + ".>",
			"$JS.API.DIRECT.GET." + listsStream(fleet) + ".>",
			"$JS.API.STREAM.MSG.GET." + listsStream(fleet),
			"$KV." + listsBucket(fleet) + "." + origin + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}
