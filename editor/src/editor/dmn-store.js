// The DMN files that go with the drawing (saved in the draft, sent on deploy). A DI service so
// the properties panel and the toolbar share one list; fires "dmnStore.changed".
export default function DmnStore(eventBus) {
  this._eventBus = eventBus;
  this.files = [];
}
DmnStore.$inject = ["eventBus"];

/** [{id, name, index}] of every dmn:decision in every file. */
DmnStore.prototype.decisions = function () {
  const out = [];
  this.files.forEach((xml, index) => {
    const doc = new DOMParser().parseFromString(xml, "application/xml");
    for (const d of doc.getElementsByTagNameNS("*", "decision")) {
      out.push({ id: d.getAttribute("id"), name: d.getAttribute("name") || d.getAttribute("id"), index });
    }
  });
  return out;
};

DmnStore.prototype.set = function (files) {
  this.files = [...files];
  this._eventBus.fire("dmnStore.changed", { files: this.files });
};

DmnStore.prototype.put = function (index, xml) {
  const files = [...this.files];
  if (index === null || index === undefined || index >= files.length) files.push(xml);
  else files[index] = xml;
  this.set(files);
  return files.indexOf(xml);
};

/** A new decision table file with one input and one output, ready for dmn-js. */
export function newDecisionXml(id, name) {
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");
  return `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:dmndi="https://www.omg.org/spec/DMN/20191111/DMNDI/" xmlns:dc="http://www.omg.org/spec/DMN/20180521/DC/" id="Definitions_${id}" name="${esc(name)}" namespace="http://marshrut.dev/dmn">
  <decision id="${id}" name="${esc(name)}">
    <decisionTable id="Table_${id}" hitPolicy="UNIQUE">
      <input id="Input_${id}_1" label="Amount">
        <inputExpression id="InputExpression_${id}_1" typeRef="number"><text>decimal(deal.amount)</text></inputExpression>
      </input>
      <output id="Output_${id}_1" label="Result" name="result" typeRef="string" />
      <rule id="Rule_${id}_1">
        <inputEntry id="InputEntry_${id}_1"><text>&gt;= 1000000</text></inputEntry>
        <outputEntry id="OutputEntry_${id}_1"><text>"large"</text></outputEntry>
      </rule>
      <rule id="Rule_${id}_2">
        <inputEntry id="InputEntry_${id}_2"><text>&lt; 1000000</text></inputEntry>
        <outputEntry id="OutputEntry_${id}_2"><text>"small"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
  <dmndi:DMNDI>
    <dmndi:DMNDiagram id="DMNDiagram_${id}">
      <dmndi:DMNShape id="DMNShape_${id}" dmnElementRef="${id}">
        <dc:Bounds height="80" width="180" x="160" y="100" />
      </dmndi:DMNShape>
    </dmndi:DMNDiagram>
  </dmndi:DMNDI>
</definitions>
`;
}
