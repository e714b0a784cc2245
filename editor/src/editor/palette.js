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

export const MarshrutPaletteModule = {
  __init__: ["marshrutPalette"],
  marshrutPalette: ["type", MarshrutPalette],
};
