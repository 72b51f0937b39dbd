// thumbgen upload page: sign in with the stage's Cognito user pool, PUT each file straight
// to its presigned S3 URL, and watch its thumbnails appear. Tokens live in sessionStorage
// (this tab only, gone when it closes), never in a cookie.

import { decodeThumbHash, thumbHashBytes } from "./thumbhash.js";

const SESSION_KEY = "thumbgen.session";
const RECENT_PAGE = 8;
// Headers a script may not set: the browser sends its own (Content-Length from the body).
const BROWSER_HEADERS = new Set(["content-length", "host", "connection", "origin", "referer"]);
// Polling an image: the first look after ~0.5 s (the pipeline needs a few hundred ms at
// best), then 1.6 times longer each time up to 5 s, each wait scaled by a random 50-100 %
// so that many cards started together spread out.
const POLL_FIRST_MS = 500;
const POLL_GROWTH = 1.6;
const POLL_MAX_MS = 5000;
const POLL_GIVE_UP_MS = 120000;
// 429 and 503 (thumbgen/retry.py has the same rules): the request was not processed, so
// it is sent again after Retry-After (seconds or an HTTP date), else after a backoff with
// full jitter (random(0, min(cap, base * 2^attempt))), at most RETRY_MAX_WAIT_MS in all.
const RETRY_STATUSES = new Set([429, 503]);
const RETRY_BASE_MS = 500;
const RETRY_CAP_MS = 10000;
const RETRY_MAX_WAIT_MS = 60000;
// Cognito's answers that end a session (a refresh token expired, revoked or malformed);
// anything else (throttling, an internal error, no network) leaves the session alone.
const SESSION_OVER = new Set(["NotAuthorizedException", "UserNotFoundException", "InvalidParameterException",
  "PasswordResetRequiredException", "UserNotConfirmedException"]);

const $ = (id) => document.getElementById(id);
let config = null;
let session = readSession();
let refreshing = null;
let recentCursor = null;
let recentGeneration = 0;  // a newer first-page load wins over an older one still running

class Failure extends Error {
  constructor(code, message, retryable = false) {
    super(message);
    this.code = code;
    this.retryable = retryable;  // nothing was sent to the API: trying again is safe
  }
}

// ---- small DOM helpers -------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${Number((n / 1024).toFixed(1))} KiB`;
  return `${Number((n / 1024 / 1024).toFixed(1))} MiB`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- session: Cognito USER_PASSWORD_AUTH, REFRESH_TOKEN_AUTH --------------------------------

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

function keepSession(value) {
  session = value;
  if (value) sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(SESSION_KEY);
}

async function cognito(action, body) {
  let response;
  try {
    response = await fetch(`${config.cognito.endpoint}/`, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
      },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new Failure("NetworkError", "The sign-in service cannot be reached; check the connection and try again.");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const code = String(data.__type || `http_${response.status}`).split("#").pop();
    throw new Failure(code, data.message || data.Message || `HTTP ${response.status}`);
  }
  return data;
}

function tokensFrom(result, username, refreshToken) {
  return {
    username,
    access: result.AccessToken,
    refresh: result.RefreshToken || refreshToken,
    expiresAt: Date.now() + (result.ExpiresIn || 3600) * 1000,
  };
}

const SIGN_IN_WORDS = {
  NotAuthorizedException: "Incorrect username or password.",
  UserNotFoundException: "Incorrect username or password.",
  PasswordResetRequiredException: "This password must be reset before you can sign in.",
  UserNotConfirmedException: "This account is not confirmed yet.",
  TooManyRequestsException: "Too many attempts: wait a minute, then try again.",
  LimitExceededException: "Too many attempts: wait a minute, then try again.",
};

async function signIn(username, password) {
  const data = await cognito("InitiateAuth", {
    AuthFlow: "USER_PASSWORD_AUTH",
    ClientId: config.cognito.clientId,
    AuthParameters: { USERNAME: username, PASSWORD: password },
  });
  if (!data.AuthenticationResult) {
    throw new Failure(data.ChallengeName || "Challenge",
      `This account must complete "${data.ChallengeName}" before it can sign in here.`);
  }
  keepSession(tokensFrom(data.AuthenticationResult, username));
}

async function refreshTokens() {
  const data = await cognito("InitiateAuth", {
    AuthFlow: "REFRESH_TOKEN_AUTH",
    ClientId: config.cognito.clientId,
    AuthParameters: { REFRESH_TOKEN: session.refresh },
  });
  keepSession(tokensFrom(data.AuthenticationResult, session.username, session.refresh));
}

// One refresh at a time, however many requests notice the expiry together. Only Cognito
// saying the refresh token is no good ends the session; its throttling, its errors or no
// network keep it, and the request waits and tries again (api()).
async function accessToken(force = false) {
  if (!session) throw new Failure("unauthorized", "Signed out.");
  if (force || Date.now() > session.expiresAt - 60000) {
    refreshing = refreshing || refreshTokens().finally(() => { refreshing = null; });
    try {
      await refreshing;
    } catch (failure) {
      if (!SESSION_OVER.has(failure.code)) {
        throw new Failure("sign_in_unavailable", `the sign-in service answered ${failure.code}`, true);
      }
      if (session) signOut("Your session has ended: sign in again.");
      throw new Failure("unauthorized", "Your session has ended: sign in again.");
    }
  }
  return session.access;
}

function signOut(message = "") {
  const old = session;
  keepSession(null);
  if (old?.refresh && config) {
    // Revoke the refresh token too; the page has already forgotten both tokens either way.
    cognito("RevokeToken", { Token: old.refresh, ClientId: config.cognito.clientId }).catch(() => {});
  }
  $("uploads").replaceChildren();
  $("recent").replaceChildren();
  $("recent-status").textContent = "";
  show();
  $("sign-in-error").textContent = message;
  $("username").focus();
}

// ---- the API (relative URLs: the page is served by the API itself) ------------------------

// One request with the access token; a 401 refreshes the token and tries once more, and
// only a 401 after that signs out.
async function authorized(path, method, json) {
  const send = async (force) => fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${await accessToken(force)}`,
      ...(json ? { "Content-Type": "application/json" } : {}),
    },
    body: json ? JSON.stringify(json) : undefined,
    cache: "no-store",
  });
  let response = await send(false);
  if (response.status === 401 && session) response = await send(true);
  if (response.status === 401) {
    if (session) signOut("Your session has ended: sign in again.");
    throw new Failure("unauthorized", "Your session has ended: sign in again.");
  }
  return response;
}

function retryAfterMs(response) {
  const value = (response.headers.get("Retry-After") || "").trim();
  if (!value) return null;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? null : Math.max(0, when - Date.now());
}

// A 429/503 that says when to come back, or that is not the API's own answer (API
// Gateway's throttling: {"message": "Too Many Requests"}, no Retry-After). The API's own
// 429 without Retry-After means waiting will not help.
async function worthRetrying(response) {
  if (!RETRY_STATUSES.has(response.status)) return false;
  if (retryAfterMs(response) !== null) return true;
  const data = await response.clone().json().catch(() => null);
  return !data?.error?.code;
}

// The request, sent again after 429/503 (and after a refresh Cognito could not answer)
// as the rules above say; onRetry(why, ms) lets the caller show that it is waiting.
async function api(path, { method = "GET", json, onRetry } = {}) {
  let waited = 0;
  for (let attempt = 0; ; attempt += 1) {
    let response = null;
    let failure = null;
    try {
      response = await authorized(path, method, json);
    } catch (error) {
      if (!error.retryable) throw error;
      failure = error;
    }
    if (response && !(await worthRetrying(response))) return response;
    const hinted = response ? retryAfterMs(response) : null;
    const delay = hinted ?? Math.random() * Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** attempt);
    if (waited + delay > RETRY_MAX_WAIT_MS) {
      if (response) return response;
      throw failure;
    }
    if (onRetry) onRetry(response ? `http_${response.status}` : failure.code, delay);
    await sleep(delay);
    waited += delay;
  }
}

async function apiJson(path, options) {
  const response = await api(path, options);
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error || {};
    throw new Failure(error.code || `http_${response.status}`,
      error.message || `the API answered ${response.status}`);
  }
  return data;
}

// The direct PUT, with exactly the headers the API signed; XHR for upload progress.
function putFile(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method || "PUT", upload.url);
    for (const [name, value] of Object.entries(upload.headers || {})) {
      if (!BROWSER_HEADERS.has(name.toLowerCase())) xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve();
      const xml = xhr.responseXML || new DOMParser().parseFromString(xhr.responseText || "<a/>", "application/xml");
      const code = xml.querySelector("Code")?.textContent || `http_${xhr.status}`;
      const message = xml.querySelector("Message")?.textContent || `the storage answered ${xhr.status}`;
      reject(new Failure(code, message));
    });
    xhr.addEventListener("error", () => reject(new Failure("upload_failed", "the upload could not reach the storage")));
    xhr.addEventListener("abort", () => reject(new Failure("upload_aborted", "the upload was aborted")));
    xhr.send(file);
  });
}

async function waitForOutcome(id, { onRetry, onPending } = {}) {
  const started = Date.now();
  let delay = POLL_FIRST_MS;
  for (;;) {
    await sleep(delay * (0.5 + Math.random() / 2));
    const image = await apiJson(`images/${encodeURIComponent(id)}`, { onRetry });
    if (image.status === "completed" || image.status === "failed") return image;
    if (onPending) onPending(image);
    if (Date.now() - started > POLL_GIVE_UP_MS) {
      throw new Failure("timeout", `still ${image.status} after ${POLL_GIVE_UP_MS / 1000} s; see Recent images later`);
    }
    delay = Math.min(delay * POLL_GROWTH, POLL_MAX_MS);
  }
}

// ---- rendering ----------------------------------------------------------------------------

function thumbnailFigures(image, name) {
  return (image.thumbnails || []).map((thumb) => el("figure", {},
    framed(thumbnailImage(thumb, name), image.placeholder, thumb.fit),
    el("figcaption", {}, thumb.name || `${thumb.size.width}×${thumb.size.height}`)));
}

function thumbnailImage({ size, url }, name) {
  return el("img", { src: url, alt: `${name}, ${size.width}×${size.height} thumbnail`,
                     width: size.width, height: size.height });
}

function failureText(error) {
  return `Failed: ${error.code}: ${error.message}`;
}

function uploadCard(file) {
  const progress = el("progress", { max: Math.max(file.size, 1), value: 0, "aria-label": `${file.name} upload progress` });
  const bytes = el("span", { class: "bytes" }, `0 B of ${formatBytes(file.size)}`);
  const status = el("p", { class: "status", role: "status" }, "Waiting…");
  const thumbs = el("div", { class: "thumbs" });
  const card = el("li", { class: "card" },
    el("div", { class: "card-head" }, el("span", { class: "name" }, file.name), bytes),
    progress, status, thumbs);
  return {
    card,
    progress(sent, total) {
      progress.max = Math.max(total, 1);
      progress.value = sent;
      bytes.textContent = `${formatBytes(sent)} of ${formatBytes(total)}`;
    },
    say(text, state = "") {
      status.textContent = text;
      card.dataset.state = state;
    },
    done(image) {
      card.dataset.id = image.id;
      thumbs.replaceChildren(...thumbnailFigures(image, file.name));
    },
  };
}

function retryingText(why, ms) {
  const what = why === "http_429" ? "The service is busy" : "The service is unavailable for a moment";
  return `${what}; trying again in ${Math.max(1, Math.round(ms / 1000))} s…`;
}

async function uploadOne(file, view) {
  const onRetry = (why, ms) => view.say(retryingText(why, ms), "retrying");
  try {
    view.say("Asking for an upload URL…");
    const created = await apiJson("images", {
      method: "POST",
      json: { filename: file.name, contentType: file.type || "application/octet-stream", fileSize: file.size,
              ...renditionsChoice() },
      onRetry,
    });
    view.card.dataset.id = created.id;
    view.say("Uploading…", "uploading");
    await putFile(created.upload, file, (sent, total) => view.progress(sent, total));
    view.progress(file.size, file.size);
    view.say("Uploaded; making thumbnails…", "processing");
    await apiJson(`images/${encodeURIComponent(created.id)}/complete`, { method: "POST", onRetry });
    const making = () => view.say("Uploaded; making thumbnails…", "processing");
    making();  // again: a retry above may have said otherwise
    const image = await waitForOutcome(created.id, { onRetry, onPending: making });
    if (image.status === "completed") {
      view.done(image);
      view.say("Thumbnails ready.", "completed");
    } else {
      view.say(failureText(image.error || { code: "failed", message: "no reason given" }), "failed");
    }
  } catch (error) {
    if (error.code === "unauthorized" && !session) return;
    view.say(failureText({ code: error.code || "error", message: error.message }), "failed");
  }
}

async function uploadAll(files) {
  const list = [...files];
  if (!list.length) return;
  const views = list.map((file) => uploadCard(file));
  $("uploads").prepend(...views.map((v) => v.card));
  await Promise.all(list.map((file, i) => uploadOne(file, views[i])));
  if (session) loadRecent(true);
}

function recentItem(image) {
  const meta = image.metadata || {};
  const name = meta.filename || image.id;
  const small = previewOf(image);
  const preview = small
    ? framed(thumbnailImage(small, name), image.placeholder, small.fit)
    : el("div", { class: "placeholder", "aria-hidden": "true" }, image.status === "failed" ? "✕" : "…");
  const detail = image.status === "failed" && image.error
    ? el("p", { class: "error" }, failureText(image.error))
    : el("p", { class: "muted" }, image.status === "completed"
      ? [meta.width && `${meta.width}×${meta.height}`, meta.fileSize && formatBytes(meta.fileSize)].filter(Boolean).join(", ")
      : image.status.replace("_", " "));
  const remove = el("button", { type: "button", class: "danger", "aria-label": `Delete ${name}` }, "Delete");
  const item = el("li", { class: "recent-item", "data-id": image.id }, preview,
    el("div", { class: "recent-text" }, el("p", { class: "name" }, name), detail), remove);
  remove.addEventListener("click", () => deleteImage(image.id, name, remove));
  return item;
}

async function loadRecent(reset) {
  const status = $("recent-status");
  try {
    const query = new URLSearchParams({ limit: String(RECENT_PAGE) });
    if (!reset && recentCursor) query.set("cursor", recentCursor);
    const generation = reset ? ++recentGeneration : recentGeneration;
    const page = await apiJson(`images?${query}`, {
      onRetry: (why, ms) => { status.textContent = retryingText(why, ms); },
    });
    if (generation !== recentGeneration) return;
    const items = page.images.map(recentItem);
    if (reset) $("recent").replaceChildren(...items);
    else $("recent").append(...items);
    recentCursor = page.nextCursor;
    $("more").hidden = !recentCursor;
    status.textContent = $("recent").children.length ? "" : "No images yet.";
  } catch (error) {
    if (session) status.textContent = failureText(error);
  }
}

async function deleteImage(id, name, button) {
  button.disabled = true;
  try {
    await apiJson(`images/${encodeURIComponent(id)}`, {
      method: "DELETE",
      onRetry: (why, ms) => { $("recent-status").textContent = retryingText(why, ms); },
    });
    for (const node of document.querySelectorAll(`[data-id="${CSS.escape(id)}"]`)) node.remove();
    $("recent-status").textContent = `Deleted ${name}.`;
    if (!$("recent").children.length) loadRecent(true);
  } catch (error) {
    button.disabled = false;
    $("recent-status").textContent = `Could not delete ${name}: ${error.code}: ${error.message}`;
  }
}

function show() {
  const signedIn = Boolean(session);
  $("sign-in").hidden = signedIn;
  $("workspace").hidden = !signedIn;
  $("who").hidden = !signedIn;
  $("who-name").textContent = signedIn ? `Signed in as ${session.username}` : "";
}

// ---- placeholders and renditions ------------------------------------------------------------

// The image's ThumbHash painted on a small canvas, stretched over the thumbnail's box; null
// without one (a placeholder is a nicety: the thumbnail loads all the same).
function placeholderCanvas(placeholder) {
  if (!placeholder) return null;
  try {
    const { width, height, rgba } = decodeThumbHash(thumbHashBytes(placeholder));
    const canvas = el("canvas", { class: "thumbhash", width, height, "aria-hidden": "true" });
    canvas.getContext("2d").putImageData(new ImageData(rgba, width, height), 0, 0);
    return canvas;
  } catch {
    return null;
  }
}

// A thumbnail over its placeholder, which goes once the thumbnail has loaded (a transparent
// PNG must not show the blur through).
function framed(img, placeholder, fit) {
  const frame = el("span", { class: `frame fit-${fit || "cover"}` }, img, placeholderCanvas(placeholder));
  img.addEventListener("load", () => frame.classList.add("loaded"), { once: true });
  return frame;
}

// The recent list's preview: the 160-wide thumbnail of the default sizes, else the smallest.
function previewOf(image) {
  const thumbnails = image.thumbnails || [];
  const area = (t) => t.size.width * t.size.height;
  return thumbnails.find((t) => t.size.width === 160)
    || thumbnails.reduce((best, t) => (best && area(best) <= area(t) ? best : t), null);
}

// The stage's renditions in the format chosen on the page; {} keeps the stage's default.
function renditionsChoice() {
  const format = $("format").value;
  if (!format || !config?.renditions?.length) return {};
  const renditions = new Map();
  for (const rendition of config.renditions) {
    const entry = { ...rendition, format };
    if (format === "png") delete entry.quality;  // PNG is lossless: a quality would be refused
    renditions.set(JSON.stringify(entry), entry);  // two that became the same are asked for once
  }
  return { renditions: [...renditions.values()] };
}

// ---- wiring -------------------------------------------------------------------------------

function wire() {
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await ready;
    } catch {
      return;
    }
    const username = $("username").value.trim();
    const password = $("password").value;
    const error = $("sign-in-error");
    if (!username || !password) {
      error.textContent = "Enter your username and password.";
      return;
    }
    const button = $("sign-in-button");
    button.disabled = true;
    error.textContent = "";
    try {
      await signIn(username, password);
      $("password").value = "";
      show();
      $("image").focus();
      loadRecent(true);
    } catch (failure) {
      error.textContent = SIGN_IN_WORDS[failure.code] || `Sign-in failed: ${failure.code}: ${failure.message}`;
    } finally {
      button.disabled = false;
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("image").addEventListener("change", (event) => {
    uploadAll(event.target.files);
    event.target.value = "";
  });
  // A file dropped beside the zone must not make the browser leave the page to open it.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(event.dataTransfer.files);
  });
  $("refresh").addEventListener("click", () => loadRecent(true));
  $("more").addEventListener("click", async () => {
    $("more").disabled = true;  // one page at a time: a double click must not list it twice
    await loadRecent(false);
    $("more").disabled = false;
  });
}

async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  config = await response.json();
  $("limit").textContent = `up to ${formatBytes(config.maxUploadBytes)}`;
}

const ready = loadConfig().then(() => {
  show();
  if (session) loadRecent(true);
}, (error) => {
  $("sign-in-error").textContent = `The page cannot load its settings (${error.message}); reload to try again.`;
  throw error;
});
ready.catch(() => {});  // shown above; a sign-in attempt waits on it and stops
wire();
show();
