"""The reader's page of `study readers serve`: one HTML document with a little vanilla JS (no build step, no files
outside Python). It reads its token from its own address, asks /api/{token}/state, shows the next case and posts the
answers; every text from the server is set as textContent (never parsed as HTML)."""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>Reader study</title>
<style>
 body{background:#111;color:#ddd;font:15px system-ui,sans-serif;margin:0;padding:12px}
 header{display:flex;gap:24px;align-items:center;flex-wrap:wrap}
 #images{display:flex;gap:12px;margin:12px 0;flex-wrap:wrap;align-items:flex-start}
 figure{margin:0;text-align:center} figure img{display:block;max-width:min(46vw,640px);image-rendering:auto;background:#000}
 figure.chosen img{outline:4px solid #4a9} figcaption{margin-top:4px;color:#aaa}
 button{background:#333;color:#ddd;border:1px solid #555;padding:4px 10px;margin:2px;cursor:pointer}
 button.on{background:#4a9;color:#000} .crit{padding:6px;border:1px solid transparent}
 .crit.focus{border-color:#4a9} .crit label{margin:0 6px} .ends{color:#888;font-size:13px}
 #msg{color:#e88;min-height:1.2em} .help{color:#888;font-size:13px}
</style></head><body>
<header><b id="who"></b><span id="progress"></span><span id="wins"></span></header>
<div id="images"></div><div id="question"></div><div id="form"></div>
<p><button id="submit">Submit (Enter)</button></p><div id="msg"></div>
<p class="help" id="help"></p>
<script>
"use strict";
const tok = location.pathname.split("/").pop();
let st = null, win = 0, focus = 0, sel = {};
const $ = id => document.getElementById(id);
function el(tag, text, cls){const e=document.createElement(tag); if(text!=null) e.textContent=text; if(cls) e.className=cls; return e;}
async function load(){
  const r = await fetch(`/api/${tok}/state`, {cache:"no-store"});
  if(!r.ok){ $("msg").textContent = "This link is not valid."; return; }
  show(await r.json());
}
function show(s){
  st = s; sel = Object.assign({}, s.next ? s.next.answers : {}); focus = 0;
  $("who").textContent = "Reader: " + s.reader;
  if(!s.next){ $("progress").textContent = `All ${s.n_cases} cases done — thank you.`;
    ["images","question","form","wins"].forEach(i => $(i).replaceChildren()); $("submit").hidden = true; return; }
  $("progress").textContent = `Case ${s.next.index + 1} of ${s.n_cases} (${s.done} done)`;
  const w = $("wins"); w.replaceChildren();
  s.windows.forEach((x, i) => { const b = el("button", `${x.label} (${i + 1 + 6})`); b.onclick = () => setWin(i); w.append(b); });
  const q = $("question"); q.replaceChildren();
  if(s.design.design === "2afc") q.append(el("h3", s.question));
  renderForm(); setWin(Math.min(win, s.windows.length - 1));
}
const NAMES = {low_dose:"low dose", full_dose:"full dose", output:"case", a:"A", b:"B"};
function roles(){
  const imgs = st.next.images, show = st.design.show.filter(r => r in imgs);
  const main = st.design.design === "2afc" ? ["a", "b"] : ["output"];
  const left = show.filter(r => r === "low_dose"), right = show.filter(r => r !== "low_dose");
  return [...left, ...main, ...right];
}
function setWin(i){
  win = Math.max(0, i); const id = st.windows[win].id;
  [...$("wins").children].forEach((b, k) => b.classList.toggle("on", k === win));
  const box = $("images"); box.replaceChildren();
  for(const role of roles()){
    const f = el("figure"); const img = el("img"); img.src = st.next.images[role][id]; img.alt = NAMES[role] || role;
    if(st.design.design === "2afc" && (role === "a" || role === "b") && sel.choice === (role === "a" ? 0 : 1)) f.className = "chosen";
    f.append(img, el("figcaption", NAMES[role] || role)); box.append(f);
  }
}
function renderForm(){
  const form = $("form"); form.replaceChildren();
  if(st.design.design === "2afc"){
    ["A", "B"].forEach((t, v) => { const b = el("button", `Image ${t}`); if(sel.choice === v) b.className = "on";
      b.onclick = () => choose(v); form.append(b); });
  } else st.design.criteria.forEach((c, k) => {
    const row = el("div", null, "crit" + (k === focus ? " focus" : "")); row.onclick = () => { focus = k; renderForm(); };
    row.append(el("b", c.label + ": "), el("span", "1 = " + c.low, "ends"));
    for(let v = 1; v <= 5; v++){ const lab = el("label"); const r = el("input"); r.type = "radio"; r.name = c.id;
      r.checked = sel[c.id] === v; r.onchange = () => { sel[c.id] = v; };
      lab.append(r, document.createTextNode(" " + v)); row.append(lab); }
    row.append(el("span", "5 = " + c.high, "ends")); form.append(row);
  });
  $("help").textContent = st.design.design === "2afc"
    ? "Keys: A or ← picks image A, B or → picks image B, Enter submits; W or 7/8/9 change the window."
    : "Keys: 1–5 rate the highlighted criterion and move to the next, ↑/↓ move, Enter submits; W or 7/8/9 change the window.";
}
function choose(v){ sel.choice = v; renderForm(); setWin(win); }
async function submit(){
  if(!st || !st.next) return;
  const missing = st.criteria.filter(c => !(c in sel));
  if(missing.length){ $("msg").textContent = "Please answer: " + missing.join(", "); return; }
  const r = await fetch(`/api/${tok}/answer`, {method:"POST", headers:{"Content-Type":"application/json"},
    body: JSON.stringify({case_id: st.next.case_id, answers: sel})});
  if(!r.ok){ $("msg").textContent = (await r.json().catch(() => ({error:"not saved"}))).error; return; }
  $("msg").textContent = ""; show(await r.json());
}
$("submit").onclick = submit;
document.addEventListener("keydown", e => {
  if(!st || !st.next || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key, two = st.design.design === "2afc";
  if(k === "Enter"){ e.preventDefault(); submit(); }
  else if(k === "w" || k === "W") setWin((win + 1) % st.windows.length);
  else if(k >= "7" && k <= "9" && +k - 7 < st.windows.length) setWin(+k - 7);
  else if(two && (k === "a" || k === "A" || k === "ArrowLeft")) choose(0);
  else if(two && (k === "b" || k === "B" || k === "ArrowRight")) choose(1);
  else if(!two && k >= "1" && k <= "5"){ const c = st.design.criteria[focus]; sel[c.id] = +k;
    focus = Math.min(focus + 1, st.design.criteria.length - 1); renderForm(); }
  else if(!two && k === "ArrowDown"){ e.preventDefault(); focus = Math.min(focus + 1, st.design.criteria.length - 1); renderForm(); }
  else if(!two && k === "ArrowUp"){ e.preventDefault(); focus = Math.max(focus - 1, 0); renderForm(); }
});
load();
</script></body></html>
"""
