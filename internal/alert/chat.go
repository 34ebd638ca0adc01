package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"time"
	"unicode/utf8"
)

// Chat receivers render events in their own markup. Event text quotes
// attackers (user names of failed logins), so every renderer escapes it
// and none lets it mention or ping anyone.

// slack posts to a Slack incoming webhook (or a compatible one:
// Mattermost, Rocket.Chat): "text" for notifications and receivers that
// know no blocks, "blocks" for the layout.
type slack struct {
	poster
	url string
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackEscape escapes the three characters Slack gives meaning
// (<!channel>, <url|label>), as Slack asks for all text it displays;
// everything else renders literally enough.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func (s *slack) message(e Event) slackMessage {
	m := slackMessage{
		Text: slackEscape.Replace(subject(e)),
		Blocks: []slackBlock{
			{Type: "header", Text: &slackText{Type: "plain_text", Text: slackEscape.Replace(truncateRunes(subject(e), 150))}},
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: slackEscape.Replace(truncateRunes(or(e.Text, e.Title), 3000))}},
		},
	}
	if len(e.Fields) > 0 {
		b := slackBlock{Type: "section"}
		for _, k := range sortedKeys(e.Fields) {
			if len(b.Fields) == 10 { // Slack's limit per section
				break
			}
			b.Fields = append(b.Fields, slackText{Type: "mrkdwn", Text: "*" + k + "*\n" + slackEscape.Replace(e.Fields[k])})
		}
		m.Blocks = append(m.Blocks, b)
	}
	m.Blocks = append(m.Blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: slackEscape.Replace(footer(e))}}})
	return m
}

func (s *slack) Send(ctx context.Context, e Event) (Reply, error) {
	body, err := marshalJSON(s.message(e))
	if err != nil {
		return Reply{}, permanent(fmt.Errorf("encode slack message: %w", err))
	}
	return s.post(ctx, s.url, jsonHeader(), body)
}

// discord posts to a Discord webhook: "content" for the notification
// line, one embed for the details, and no mentions at all.
type discord struct {
	poster
	url string
}

type discordField struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Inline bool   `json:"inline"`
}

type discordEmbed struct {
	Description string         `json:"description,omitempty"`
	Color       int            `json:"color"`
	Timestamp   string         `json:"timestamp,omitempty"`
	Fields      []discordField `json:"fields,omitempty"`
	Footer      *struct {
		Text string `json:"text"`
	} `json:"footer,omitempty"`
}

type discordMessage struct {
	Content         string         `json:"content"`
	Embeds          []discordEmbed `json:"embeds"`
	AllowedMentions struct {
		Parse []string `json:"parse"`
	} `json:"allowed_mentions"`
}

// discordColor is the embed's side bar per severity.
var discordColor = [...]int{Info: 0x3498DB, Warning: 0xF1C40F, Critical: 0xE74C3C}

// discordEscape backslash-escapes Discord's markdown, so quoted text
// cannot turn into links, headings or spoilers.
var discordEscape = strings.NewReplacer(
	`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`, ">", `\>`,
	"[", `\[`, "]", `\]`, "#", `\#`)

func (d *discord) message(e Event) discordMessage {
	em := discordEmbed{
		Description: truncateRunes(discordEscape.Replace(or(e.Text, e.Title)), 4096),
		Color:       discordColor[e.Severity],
		Footer: &struct {
			Text string `json:"text"`
		}{footer(e)},
	}
	if !e.Time.IsZero() {
		em.Timestamp = e.Time.UTC().Format(time.RFC3339)
	}
	for _, k := range sortedKeys(e.Fields) {
		if len(em.Fields) == 25 { // Discord's limit per embed
			break
		}
		em.Fields = append(em.Fields, discordField{Name: k, Value: truncateRunes(discordEscape.Replace(e.Fields[k]), 1024), Inline: true})
	}
	m := discordMessage{Content: truncateRunes(discordEscape.Replace(subject(e)), 2000), Embeds: []discordEmbed{em}}
	m.AllowedMentions.Parse = []string{}
	return m
}

func (d *discord) Send(ctx context.Context, e Event) (Reply, error) {
	body, err := marshalJSON(d.message(e))
	if err != nil {
		return Reply{}, permanent(fmt.Errorf("encode discord message: %w", err))
	}
	return d.post(ctx, d.url, jsonHeader(), body)
}

// TelegramAPI is the Bot API's base URL.
const TelegramAPI = "https://api.telegram.org"

// telegram calls the Bot API's sendMessage with HTML formatting, the
// simplest of its markups to escape.
type telegram struct {
	poster
	api    string // base URL, TelegramAPI unless a test says otherwise
	token  string
	chatID string
}

type telegramMessage struct {
	ChatID             string `json:"chat_id"`
	Text               string `json:"text"`
	ParseMode          string `json:"parse_mode"`
	LinkPreviewOptions struct {
		IsDisabled bool `json:"is_disabled"`
	} `json:"link_preview_options"`
}

func (t *telegram) message(e Event) telegramMessage {
	text := "<b>" + html.EscapeString(subject(e)) + "</b>"
	if e.Text != "" {
		text += "\n" + html.EscapeString(e.Text)
	}
	text += "\n<i>" + html.EscapeString(footer(e)) + "</i>"
	m := telegramMessage{ChatID: t.chatID, Text: text, ParseMode: "HTML"}
	m.LinkPreviewOptions.IsDisabled = true
	return m
}

func (t *telegram) Send(ctx context.Context, e Event) (Reply, error) {
	body, err := marshalJSON(t.message(e))
	if err != nil {
		return Reply{}, permanent(fmt.Errorf("encode telegram message: %w", err))
	}
	r, err := t.post(ctx, strings.TrimRight(t.api, "/")+"/bot"+t.token+"/sendMessage", jsonHeader(), body)
	if se, ok := err.(*sendError); ok && se.reply.Code == 429 && se.retryAfter == 0 {
		// The Bot API says how long to wait in its body too.
		var ans struct {
			Parameters struct {
				RetryAfter int `json:"retry_after"`
			} `json:"parameters"`
		}
		if json.Unmarshal([]byte(se.reply.Text), &ans) == nil {
			se.retryAfter = time.Duration(ans.Parameters.RetryAfter) * time.Second
		}
	}
	return r, err
}

// footer is the small print of chat messages: severity, kind, host and
// time.
func footer(e Event) string {
	parts := []string{e.Severity.String(), e.Kind}
	if e.Host != "" {
		parts = append(parts, e.Host)
	}
	if !e.Time.IsZero() {
		parts = append(parts, e.Time.UTC().Format("2006-01-02 15:04:05Z"))
	}
	return "moat · " + strings.Join(parts, " · ")
}

// truncateRunes cuts s to at most n runes, marking a cut.
func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for pos := range s {
		if i == n-1 {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}
