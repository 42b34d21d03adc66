// What a client script (sdk-flow.mjs, dpop-flow.mjs) shares with the Go
// test that runs it: settings from the environment, numbered steps on
// stdout and in the HTTP trace, and checks that stop the script with a
// message.

// env returns a setting that must be in the environment.
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

// info prints a detail of the step under way.
export const info = (text) => console.log(`        ${text}`);

// CheckError is a failed check: its message says it all, no stack.
export class CheckError extends Error {}

// check throws a CheckError with message unless cond holds.
export function check(cond, message) {
  if (!cond) throw new CheckError(message);
}

// Steps numbers a script's steps after STEP_PREFIX ("3." → step 3.1),
// on stdout and as notes in the trace, so that the Go test's log and the
// trace tell where a failure happened.
export class Steps {
  constructor(trace) {
    this.trace = trace;
    this.prefix = process.env.STEP_PREFIX || '';
    this.count = 0;
  }

  // step starts the next step.
  step(title) {
    this.count++;
    const line = `step ${this.current}: ${title}`;
    console.log(line);
    this.trace.note(line);
  }

  // current is the number of the step under way, with its prefix.
  get current() {
    return `${this.prefix}${this.count}`;
  }
}
