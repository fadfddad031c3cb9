/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it checks metric
 * and label names, label-value escapes, numeric values, one TYPE per family declared before its
 * samples, and that every sample belongs to its family (summary: `name`, `name_sum`,
 * `name_count`, with a `quantile` label only on `name`). Throws on anything else.
 */

export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedFamily {
  readonly name: string;
  type: string;
  help: string | undefined;
  readonly samples: ParsedSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const TYPES = new Set(['counter', 'gauge', 'summary', 'histogram', 'untyped']);

export function parsePrometheusText(text: string): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  if (text !== '' && !text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line)})`;
    if (line.startsWith('#')) {
      parseComment(line, families, where);
      return;
    }
    if (line.trim() === '') return;
    const sample = parseSample(line, where);
    const family = familyOf(sample, families);
    if (family === undefined) throw new Error(`${where}: sample of a family without a TYPE line before it`);
    checkSampleShape(family, sample, where);
    family.samples.push(sample);
  });
  return families;
}

function parseComment(line: string, families: Map<string, ParsedFamily>, where: string): void {
  const match = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line);
  if (match === null) return; // Other comments are allowed and ignored.
  const [, kind, name, rest] = match;
  if (!new RegExp(`${METRIC_NAME.source}$`).test(name)) throw new Error(`${where}: bad metric name`);
  let family = families.get(name);
  if (kind === 'TYPE') {
    if (!TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
    if (family !== undefined && family.type !== '') throw new Error(`${where}: second TYPE for ${name}`);
    if (family !== undefined && family.samples.length > 0) throw new Error(`${where}: TYPE after samples`);
    if (family === undefined) families.set(name, (family = { name, type: rest, help: undefined, samples: [] }));
    family.type = rest;
  } else {
    if (family?.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
    if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
    if (family === undefined) families.set(name, (family = { name, type: '', help: rest, samples: [] }));
    family.help = rest;
  }
}

function parseSample(line: string, where: string): ParsedSample {
  const nameMatch = METRIC_NAME.exec(line);
  if (nameMatch === null) throw new Error(`${where}: bad metric name`);
  const name = nameMatch[0];
  let position = name.length;
  const labels: Record<string, string> = {};
  if (line[position] === '{') {
    position += 1;
    while (line[position] !== '}') {
      const labelMatch = LABEL_NAME.exec(line.slice(position));
      if (labelMatch === null) throw new Error(`${where}: bad label name at ${position}`);
      const labelName = labelMatch[0];
      position += labelName.length;
      if (line.slice(position, position + 2) !== '="') throw new Error(`${where}: expected =" after ${labelName}`);
      position += 2;
      let value = '';
      for (;;) {
        const char = line[position];
        if (char === undefined) throw new Error(`${where}: unterminated label value`);
        position += 1;
        if (char === '"') break;
        if (char === '\\') {
          const escaped = line[position];
          position += 1;
          if (escaped === 'n') value += '\n';
          else if (escaped === '\\' || escaped === '"') value += escaped;
          else throw new Error(`${where}: bad escape \\${escaped}`);
        } else {
          value += char;
        }
      }
      if (Object.hasOwn(labels, labelName)) throw new Error(`${where}: duplicate label ${labelName}`);
      labels[labelName] = value;
      if (line[position] === ',') position += 1;
      else if (line[position] !== '}') throw new Error(`${where}: expected , or } after a label`);
    }
    position += 1;
  }
  const rest = line.slice(position);
  const valueMatch = /^ (\S+)( -?[0-9]+)?$/.exec(rest);
  if (valueMatch === null) throw new Error(`${where}: expected " value [timestamp]"`);
  return { name, labels, value: parseValue(valueMatch[1], where) };
}

function parseValue(text: string, where: string): number {
  if (text === 'NaN') return Number.NaN;
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${text}`);
  return Number(text);
}

function familyOf(sample: ParsedSample, families: Map<string, ParsedFamily>): ParsedFamily | undefined {
  const direct = families.get(sample.name);
  if (direct !== undefined) return direct;
  for (const suffix of ['_sum', '_count', '_bucket']) {
    if (sample.name.endsWith(suffix)) {
      const family = families.get(sample.name.slice(0, -suffix.length));
      if (family !== undefined && (family.type === 'summary' || family.type === 'histogram')) return family;
    }
  }
  return undefined;
}

function checkSampleShape(family: ParsedFamily, sample: ParsedSample, where: string): void {
  if (family.type === '') throw new Error(`${where}: sample before TYPE`);
  if (family.type === 'summary') {
    const isQuantile = sample.name === family.name;
    if (isQuantile !== Object.hasOwn(sample.labels, 'quantile')) {
      throw new Error(`${where}: summary quantile label only (and always) on the bare name`);
    }
    if (isQuantile) {
      const quantile = Number(sample.labels.quantile);
      if (!(quantile >= 0 && quantile <= 1)) throw new Error(`${where}: quantile out of [0, 1]`);
    }
  }
  if (family.type === 'counter' && !(sample.value >= 0)) throw new Error(`${where}: negative or NaN counter`);
}

/** The value of the one sample with exactly these labels; throws if absent. */
export function sampleValue(
  families: Map<string, ParsedFamily>,
  familyName: string,
  sampleName: string,
  labels: Record<string, string>,
): number {
  const family = families.get(familyName);
  if (family === undefined) throw new Error(`no family ${familyName}`);
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = family.samples.filter(
    (sample) => sample.name === sampleName && JSON.stringify(Object.entries(sample.labels).sort()) === wanted,
  );
  if (found.length !== 1) throw new Error(`${found.length} samples ${sampleName}${wanted}`);
  return found[0].value;
}
