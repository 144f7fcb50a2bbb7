// The service's API as the page uses it: the tab's bearer token, JSON and form requests,
// and the dashboard's one event stream, read with fetch (EventSource can't send a header).

const TOKEN_KEY = "model-server-token";

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

function headers(extra = {}) {
  const value = token.get();
  return value ? { ...extra, Authorization: `Bearer ${value}` } : extra;
}

async function failure(response) {
  let detail = `${response.status} ${response.statusText}`;
  try {
    detail = (await response.json()).detail ?? detail;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, detail);
}

export async function request(method, path, body = undefined, accept = "application/json") {
  const options = { method, headers: headers({ Accept: accept }) };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, options);
  if (!response.ok) throw await failure(response);
  return accept === "application/json" ? response.json() : response.blob();
}

// Calls `onSnapshot` with each snapshot of /ui/events until `signal` aborts; throws
// ApiError when the server refuses the stream (a 401: ask for a token). The server sends
// the whole snapshot once, then only the parts that changed: merged here.
export async function stream(onSnapshot, signal) {
  let state = null;
  const response = await fetch("/ui/events", { headers: headers(), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const lines = buffer.slice(0, end).split("\n");
      buffer = buffer.slice(end + 2);
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
      if (!data.length) continue;
      const parts = JSON.parse(data.join("\n"));
      state = lines.includes("event: changes") && state ? { ...state, ...parts } : parts;
      onSnapshot(state);
    }
  }
}
