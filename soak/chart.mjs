// The soak's chart, written by hand as SVG (no dependency): time-to-token (p50, p99, max per
// 10 s, log scale) over the run, with Redis outages, latency spikes and the process restart
// marked, and the RSS of every process below it.

const WIDTH = 1000
const PANEL = { left: 70, right: 180, top: 56, height: 240, gap: 70 }
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#000000']

const xml = (text) => String(text).replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)
const fixed = (x) => x.toFixed(1)

/** One panel's frame: axes, y ticks (`ticks` as [value, label]) and its title. */
function frame(top, title, ticks, y, seconds, x) {
  const right = WIDTH - PANEL.right
  const parts = [
    `<text x="${PANEL.left}" y="${top - 12}" font-weight="bold">${xml(title)}</text>`,
    `<rect x="${PANEL.left}" y="${top}" width="${right - PANEL.left}" height="${PANEL.height}" fill="none" stroke="#999"/>`,
  ]
  for (const [value, label] of ticks) {
    parts.push(`<line x1="${PANEL.left}" x2="${right}" y1="${fixed(y(value))}" y2="${fixed(y(value))}" stroke="#eee"/>`)
    parts.push(`<text x="${PANEL.left - 6}" y="${fixed(y(value) + 4)}" text-anchor="end">${xml(label)}</text>`)
  }
  const step = seconds > 1200 ? 300 : seconds > 300 ? 60 : 30
  for (let s = 0; s <= seconds; s += step) {
    parts.push(`<text x="${fixed(x(s))}" y="${top + PANEL.height + 16}" text-anchor="middle">${s / 60} min</text>`)
  }
  return parts
}

/** A polyline through `points` ([x, y] in data units), skipping nulls. */
function line(points, x, y, color, width = 1.5) {
  const coords = points.filter(([, v]) => v !== null && v !== undefined).map(([t, v]) => `${fixed(x(t))},${fixed(y(v))}`)
  return coords.length ? `<polyline fill="none" stroke="${color}" stroke-width="${width}" points="${coords.join(' ')}"/>` : ''
}

function legend(items, top) {
  return items.map(
    ([label, color], i) =>
      `<rect x="${WIDTH - PANEL.right + 12}" y="${top + i * 16}" width="10" height="10" fill="${color}"/>` +
      `<text x="${WIDTH - PANEL.right + 28}" y="${top + i * 16 + 9}">${xml(label)}</text>`,
  )
}

/** Shaded spikes and vertical lines for the run's events, within one panel. */
function marks(summary, top, x) {
  const { spike } = summary.setup.faults
  const seconds = summary.setup.durationMs / 1000
  const parts = []
  for (let m = 0; m * 60 + spike.atSecond < seconds; m++) {
    const from = x(m * 60 + spike.atSecond)
    const to = x(Math.min(seconds, m * 60 + spike.atSecond + spike.seconds))
    parts.push(`<rect x="${fixed(from)}" y="${top}" width="${fixed(to - from)}" height="${PANEL.height}" fill="#fdd" opacity="0.6"/>`)
  }
  for (const event of summary.events) {
    const color = event.what.startsWith('redis killed') ? '#888' : event.what.includes('worker') ? '#9467bd' : undefined
    if (!color) continue
    parts.push(
      `<line x1="${fixed(x(event.t))}" x2="${fixed(x(event.t))}" y1="${top}" y2="${top + PANEL.height}" stroke="${color}" stroke-dasharray="4 3"/>`,
    )
  }
  return parts
}

/** The SVG document for a soak summary. */
export function chart(summary) {
  const seconds = summary.setup.durationMs / 1000
  const x = (s) => PANEL.left + (Math.min(s, seconds) / seconds) * (WIDTH - PANEL.right - PANEL.left)
  const top1 = PANEL.top
  const top2 = top1 + PANEL.height + PANEL.gap
  const height = top2 + PANEL.height + 50

  // Time-to-token, log scale from 0.01 ms to 10 s.
  const [lo, hi] = [-2, 4]
  const yLat = (ms) => top1 + PANEL.height - ((Math.log10(Math.max(ms, 10 ** lo)) - lo) / (hi - lo)) * PANEL.height
  const latTicks = [0.01, 0.1, 1, 10, 100, 1000, 10000].map((v) => [v, v >= 1000 ? `${v / 1000} s` : `${v} ms`])
  const series = summary.timeToTokenMs.every10s
  const mid = (b) => b.t + 5
  const latency = [
    ...marks(summary, top1, x),
    ...frame(top1, 'time-to-token per 10 s (log scale): p50, p99, max', latTicks, yLat, seconds, x),
    line(
      series.map((b) => [mid(b), b.max]),
      x,
      yLat,
      '#d62728',
    ),
    line(
      series.map((b) => [mid(b), b.p99]),
      x,
      yLat,
      '#ff7f0e',
    ),
    line(
      series.map((b) => [mid(b), b.p50]),
      x,
      yLat,
      '#1f77b4',
      2,
    ),
    ...legend(
      [
        ['p50', '#1f77b4'],
        ['p99', '#ff7f0e'],
        ['max', '#d62728'],
        ['IdP answers +2 s', '#fdd'],
        ['Redis killed', '#888'],
        ['process killed/started', '#9467bd'],
      ],
      top1,
    ),
  ]

  // RSS, linear from 0 to the largest sample rounded up to 50 MiB.
  const maxMiB = Math.max(50, ...summary.rss.flatMap((p) => p.series.map(([, v]) => v)))
  const top = Math.ceil(maxMiB / 50) * 50
  const yRss = (mib) => top2 + PANEL.height - (mib / top) * PANEL.height
  const rssTicks = Array.from({ length: 6 }, (_, i) => [(top / 5) * i, `${(top / 5) * i} MiB`])
  const rss = [
    ...marks(summary, top2, x),
    ...frame(
      top2,
      `RSS of every process (bound on growth after 2 min: ${summary.setup.rssBoundMiB} MiB per worker)`,
      rssTicks,
      yRss,
      seconds,
      x,
    ),
    ...summary.rss.map((p, i) => line(p.series, x, yRss, COLORS[i % COLORS.length])),
    ...legend(
      summary.rss.map((p, i) => [p.name, COLORS[i % COLORS.length]]),
      top2,
    ),
  ]

  const title =
    `librechat-obo soak: ${summary.setup.minutes} min, ${summary.calls} calls, ${summary.wrongTokens} wrong, ` +
    `${summary.expiredTokens} expired, ${summary.pass ? 'PASS' : 'FAIL'} (${summary.finishedAt})`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${WIDTH}" height="${height}" fill="white"/>`,
    `<text x="${PANEL.left}" y="18" font-size="13">${xml(title)}</text>`,
    ...latency,
    ...rss,
    '</svg>',
    '',
  ].join('\n')
}
