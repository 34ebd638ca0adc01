// Package alert sends events (logins, bans, drift, certificate trouble,
// changes) to notifiers: ntfy, webhooks, Slack, Discord, Telegram and SMTP.
// This file set holds its configuration; sending arrives in the alerts part.
package alert
