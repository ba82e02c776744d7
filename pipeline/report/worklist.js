// The worklist's own script (hashed into the page's CSP): filter, search, sort and group the
// invoice rows. Without it the table is complete and the controls stay hidden.
(() => {
  "use strict";
  const byId = (id) => document.getElementById(id);
  const table = byId("wl-table");
  const controls = byId("wl-controls");
  if (!table || !controls) return;
  const body = table.tBodies[0];
  const rows = Array.from(body.querySelectorAll("tr.invoice"));
  const position = new Map(rows.map((row, index) => [row, index]));
  const heads = Array.from(body.querySelectorAll("tr.reason"));
  const search = byId("wl-search");
  const supplier = byId("wl-supplier");
  const reason = byId("wl-reason");
  const age = byId("wl-age");
  const sort = byId("wl-sort");
  const grouped = byId("wl-grouped");
  const shown = byId("wl-shown");
  const data = (row, name) => row.dataset[name] || "";
  const amount = (row) => (data(row, "amount") === "" ? -Infinity : Number(data(row, "amount")));
  const lastIfEmpty = (a, b) => (a === "") - (b === "") || a.localeCompare(b);
  const orders = {
    amount: (a, b) => amount(b) - amount(a) || lastIfEmpty(data(a, "currency"), data(b, "currency")),
    age: (a, b) => Number(data(b, "age")) - Number(data(a, "age")),
    supplier: (a, b) => lastIfEmpty(data(a, "supplier"), data(b, "supplier")),
    date: (a, b) => lastIfEmpty(data(a, "date"), data(b, "date")),
  };
  const invoices = (n) => (n === 1 ? "1 invoice" : n + " invoices");

  const matches = (row) => {
    const needle = search.value.trim().toLowerCase();
    return (
      (!needle || (data(row, "number") + "\n" + data(row, "key")).toLowerCase().includes(needle)) &&
      (!supplier.value || data(row, "supplier") === supplier.value) &&
      (!reason.value || data(row, "group") === reason.value) &&
      Number(data(row, "age")) >= Number(age.value || 0)
    );
  };

  // The page arrives grouped in its listed order: only a change of sort or grouping moves rows,
  // and only rows whose visibility changes are touched (a worklist may hold thousands).
  let arranged = "|grouped";
  const arrange = () => {
    const wanted = sort.value + "|" + (grouped.checked ? "grouped" : "flat");
    if (wanted === arranged) return;
    arranged = wanted;
    const compare = orders[sort.value];
    const order = compare
      ? rows.slice().sort((a, b) => compare(a, b) || position.get(a) - position.get(b))
      : rows;
    if (grouped.checked) {
      heads.forEach((head) => {
        body.append(head, ...order.filter((row) => data(row, "group") === data(head, "group")));
      });
    } else {
      body.append(...order);
    }
  };

  const apply = () => {
    rows.forEach((row) => {
      const hide = !matches(row);
      if (row.hidden !== hide) row.hidden = hide;
    });
    arrange();
    heads.forEach((head) => {
      const mine = rows.filter((row) => data(row, "group") === data(head, "group"));
      const visible = mine.filter((row) => !row.hidden).length;
      const hide = !grouped.checked || visible === 0;
      if (head.hidden !== hide) head.hidden = hide;
      head.querySelector(".count").textContent =
        visible === mine.length ? invoices(visible) : visible + " of " + invoices(mine.length);
    });
    const count = rows.filter((row) => !row.hidden).length;
    shown.textContent = "Showing " + count + " of " + invoices(rows.length);
  };

  [search, supplier, reason, age, sort, grouped].forEach((control) => {
    control.addEventListener("input", apply);
    control.addEventListener("change", apply);
  });
  controls.hidden = false;
  apply();
})();
