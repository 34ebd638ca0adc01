// Package alert tells the operator what moat sees, within seconds: logins,
// bans, configuration drift, certificate and resource trouble, changes
// and moat's own life cycle.
//
// Producers build events with the constructors (Login{…}.Event(),
// Ban{…}.Event(), …) and hand them to a Dispatcher, whose Notify never
// blocks. Routes choose notifiers by kind and severity and keep quiet
// hours; automatic bans are summarised in digests, at most one message per
// interval per route. Each notifier (ntfy, generic webhook, Slack,
// Discord, Telegram, SMTP) has a bounded queue, retries with backoff, and
// counters for moat status and Prometheus. docs/alerts.md documents the
// behaviour and the webhook's JSON schema and signature.
//
// The package imports no other layer: the daemon connects the guard,
// audit, gateway and change machinery to Notify.
package alert
