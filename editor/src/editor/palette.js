// Palette entries for the task types the engine runs, so nobody has to draw a plain task and
// change its type with the wrench: user task, service task, business-rule task.
export default function MarshrutPalette(palette, create, elementFactory, translate) {
  this._create = create;
  this._elementFactory = elementFactory;
  this._translate = translate;
  palette.registerProvider(500, this);
}
MarshrutPalette.$inject = ["palette", "create", "elementFactory", "translate"];

MarshrutPalette.prototype.getPaletteEntries = function () {
  const { _create: create, _elementFactory: elementFactory, _translate: translate } = this;
  const entry = (type, className, title) => {
    const start = (event) => create.start(event, elementFactory.createShape({ type }));
    return { group: "activity", className, title: translate(title), action: { dragstart: start, click: start } };
  };
  return {
    "create.user-task": entry("bpmn:UserTask", "bpmn-icon-user-task", "Create user task"),
    "create.service-task": entry("bpmn:ServiceTask", "bpmn-icon-service-task", "Create service task"),
    "create.business-rule-task": entry("bpmn:BusinessRuleTask", "bpmn-icon-business-rule-task",
      "Create business rule task"),
  };
};

// The context pad's "append task" makes a plain bpmn:Task, which the engine refuses: it appends a
// user task instead, and "append service task" sits next to it.
export function MarshrutContextPad(contextPad, autoPlace, create, elementFactory, translate, eventBus, directEditing) {
  this._autoPlace = autoPlace;
  // an appended event or gateway does not open its label for typing: the next click (on an
  // arrow, say) would only close that box. Tasks still do — they need a name.
  eventBus.on("autoPlace.end", 500, (event) => {
    const type = event.shape && event.shape.type;
    if (type && /Event$|Gateway$/.test(type)) setTimeout(() => directEditing.cancel(), 0);
  });
  this._create = create;
  this._elementFactory = elementFactory;
  this._translate = translate;
  contextPad.registerProvider(500, this);
}
MarshrutContextPad.$inject = ["contextPad", "autoPlace", "create", "elementFactory", "translate", "eventBus",
  "directEditing"];

MarshrutContextPad.prototype.getContextPadEntries = function () {
  const { _autoPlace: autoPlace, _create: create, _elementFactory: factory, _translate: translate } = this;
  const append = (type, className, title) => ({
    group: "model",
    className,
    title: translate(title),
    action: {
      click: (_event, element) => autoPlace.append(element, factory.createShape({ type })),
      dragstart: (event, element) => create.start(event, factory.createShape({ type }), { source: element }),
    },
  });
  return (entries) => {
    if (!entries["append.append-task"]) return entries;
    const out = {};
    for (const [key, entry] of Object.entries(entries)) {
      if (key === "append.append-task") {
        out["append.user-task"] = append("bpmn:UserTask", "bpmn-icon-user-task", "Append user task");
        out["append.service-task"] = append("bpmn:ServiceTask", "bpmn-icon-service-task", "Append service task");
      } else {
        out[key] = entry;
      }
    }
    return out;
  };
};

export const MarshrutPaletteModule = {
  __init__: ["marshrutPalette", "marshrutContextPad"],
  marshrutPalette: ["type", MarshrutPalette],
  marshrutContextPad: ["type", MarshrutContextPad],
};
