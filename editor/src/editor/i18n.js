// The editor's own strings in Russian (English is the key). The page language comes from
// <html lang>, which Flask-Babel sets.
const RU = {
  "Trigger": "Запуск",
  "Starts": "Запускается",
  "by hand": "вручную",
  "on a CRM event": "по событию CRM",
  "on a timer": "по таймеру",
  "Entity": "Сущность",
  "Event": "Событие",
  "Timer": "Таймер",
  "Timer type": "Тип таймера",
  "Cycle (R/2026-01-05T09:00/P1D)": "Цикл (R/2026-01-05T09:00/P1D)",
  "Date (2026-01-05T09:00)": "Дата (2026-01-05T09:00)",
  "Duration (PT2H)": "Длительность (PT2H)",
  "Value": "Значение",
  "Condition": "Условие",
  "Default flow": "Поток по умолчанию",
  "Taken when no other condition holds": "Выбирается, когда другие условия не выполнены",
  "all of": "все условия",
  "any of": "любое условие",
  "Add condition": "Добавить условие",
  "Add group": "Добавить группу",
  "Remove": "Удалить",
  "Advanced: expression": "Для опытных: выражение",
  "Use the builder": "Конструктор",
  "This expression is too complex for the builder.": "Это выражение слишком сложное для конструктора.",
  "Field": "Поле",
  "Operator": "Оператор",
  "is empty": "пусто",
  "is not empty": "не пусто",
  "contains": "содержит",
  "is one of": "одно из",
  "is true": "да",
  "is false": "нет",
  "Loading…": "Загрузка…",
  "Pick the trigger of the start event first to get the fields.":
    "Сначала выберите событие запуска, чтобы получить поля.",
  "Assignment": "Назначение",
  "Assign to": "Кому",
  "a user": "пользователю",
  "a role (members claim it)": "роли (берёт любой участник)",
  "the head of a department": "руководителю отдела",
  "the head of the responsible's department": "руководителю отдела ответственного",
  "the responsible": "ответственному",
  "a role, in turn (round robin)": "роли по очереди",
  "the least loaded role member": "наименее загруженному участнику роли",
  "User": "Пользователь",
  "Role": "Роль",
  "Department": "Отдел",
  "Out of office": "Если отсутствует",
  "give it to the deputy": "передать заместителю",
  "skip the person": "пропустить",
  "Due in": "Срок",
  "no due date": "без срока",
  "minutes": "минут",
  "hours": "часов",
  "days": "дней",
  "weeks": "недель",
  "Priority": "Приоритет",
  "low": "низкий",
  "normal": "обычный",
  "high": "высокий",
  "Instructions": "Инструкция",
  "Form fields": "Поля формы",
  "Add field": "Добавить поле",
  "Name": "Имя",
  "Type": "Тип",
  "Label": "Подпись",
  "Required": "Обязательное",
  "Options (value: label per line)": "Варианты (значение: подпись, по строке)",
  "Service operation": "Операция",
  "Operation": "Операция",
  "Parameters": "Параметры",
  "literal": "значение",
  "expression": "выражение",
  "Decision table": "Таблица решений",
  "Decision": "Решение",
  "New table": "Новая таблица",
  "Edit table": "Изменить таблицу",
  "Process settings": "Настройки процесса",
  "Priority (lower runs first)": "Приоритет (меньше — раньше)",
  "Variables": "Переменные",
  "Add variable": "Добавить переменную",
  "(none)": "(нет)",
  "Time zone": "Часовой пояс",
  "Count working hours only": "Считать только рабочее время",
  "Timer options": "Параметры таймера",
  "Interrupt the activity": "Прерывать задачу",
  "A cycle repeats only on a timer that does not interrupt the activity":
    "Цикл повторяется только у таймера, который не прерывает задачу",
  "Runs its path at each occurrence while the activity is active":
    "Путь таймера выполняется при каждом срабатывании, пока задача не завершена",
  "Run for each record": "Запускать для каждой записи",
  "Not touched for (days)": "Без изменений (дней)",
  "Open records only": "Только открытые",
  "Draft saved": "Черновик сохранён",
  "revision": "ревизия",
  "No problems: the process can be deployed.": "Ошибок нет: процесс можно развернуть.",
  "not on a shape": "не на фигуре",
  "Deployed as version": "Развёрнут как версия",
  "active": "активна",
  "Imported": "Открыт файл",
  "The drawing has problems; fix them first.": "В схеме есть ошибки; сначала исправьте их.",
  "Status": "Статус",
  "Path": "Путь",
  "Task": "Задача",
  "Would call": "Вызвал бы",
  "Incident": "Инцидент",
  "Waits for": "Ждёт",
  "Nothing was saved and no operation was called.": "Ничего не сохранено, операции не вызывались.",
  "waiting": "ожидает",
  "completed": "завершён",
  "incident": "инцидент",
  "created": "создан(а)",
  "updated": "изменён(а)",
  "deleted": "удалён(а)",
  "stage changed": "смена стадии",
  "converted": "конвертирован",
  "deal": "сделка",
  "lead": "лид",
  "contact": "контакт",
  "company": "компания",
  // record picker, condition builder
  "not found": "не найдена",
  "Start typing a name…": "Начните вводить название…",
  "Nothing found": "Ничего не найдено",
  "compare with a process variable": "сравнить с переменной процесса",
  "rose above": "стала больше",
  "Give a value": "Укажите значение",
  "Give a number": "Нужно число",
  "Pick the record from the list": "Выберите запись из списка",
  "Name in conditions": "Имя в условиях",
  "string": "текст",
  "integer": "целое число",
  "decimal": "число",
  "boolean": "да/нет",
  "date": "дата",
  "json": "JSON",
  // validation, drafts, dry run
  "No errors: the process can be deployed, but look at the warnings:":
    "Ошибок нет, процесс можно развернуть, но есть замечания:",
  "Draft saved automatically": "Черновик сохранён автоматически",
  "— the values typed by hand —": "— значения, введённые вручную —",
  "becomes responsible": "становится ответственным",
  "Would do": "Выполнил бы",
  "due": "срок",
  "task": "задача",
  "Nothing was saved and no operation was called. The path stays on the diagram.":
    "Ничего не сохранено, операции не вызывались. Путь остаётся на схеме.",
  "Assign the responsible": "Назначить ответственного",
  "user": "пользователь",
  "role": "роль",
  "department_head": "руководитель отдела",
  // sources and lead statuses (codes in the CRM)
  "CALL": "Звонок",
  "EMAIL": "E-mail",
  "WEB": "Сайт",
  "ADVERTISING": "Реклама",
  "PARTNER": "Партнёр",
  "RECOMMENDATION": "Рекомендация",
  "TRADE_SHOW": "Выставка",
  "WEBFORM": "Веб-форма",
  "OTHER": "Другое",
  "NEW": "Новый",
  "IN_PROCESS": "В работе",
  "PROCESSED": "Обработан",
  "JUNK": "Некачественный",
  "CONVERTED": "Сконвертирован",
};

// bpmn-js, its properties panel and bpmnlint: palette, context pad, panel headings and type
// labels (the panel shows "Sequence Flow" upper-cased), lint messages.
const BPMN_RU = {
  // palette, context pad, replace menu
  "Activate hand tool": "Рука (перемещение холста)",
  "Activate lasso tool": "Лассо (выделение)",
  "Activate create/remove space tool": "Раздвинуть/сдвинуть элементы",
  "Activate global connect tool": "Соединить элементы",
  "Create start event": "Начальное событие",
  "Create intermediate/boundary event": "Промежуточное событие",
  "Create end event": "Конечное событие",
  "Create gateway": "Шлюз (развилка)",
  "Create task": "Задача без типа",
  "Create user task": "Задача сотруднику",
  "Create service task": "Действие в CRM",
  "Create business rule task": "Таблица решений",
  "Create expanded sub-process": "Подпроцесс",
  "Create pool/participant": "Пул/участник",
  "Create data object reference": "Объект данных",
  "Create data store reference": "Хранилище данных",
  "Create group": "Группа",
  "Append end event": "Добавить конечное событие",
  "Append gateway": "Добавить шлюз (развилку)",
  "Append task": "Добавить задачу",
  "Append user task": "Добавить задачу сотруднику",
  "Append service task": "Добавить действие в CRM",
  "Append intermediate/boundary event": "Добавить промежуточное событие",
  "Append message intermediate catch event": "Добавить ожидание сообщения",
  "Append timer intermediate catch event": "Добавить ожидание по таймеру",
  "Append conditional intermediate catch event": "Добавить ожидание условия",
  "Append signal intermediate catch event": "Добавить ожидание сигнала",
  "Append receive task": "Добавить задачу получения",
  "Append compensation activity": "Добавить компенсацию",
  "Add text annotation": "Добавить примечание",
  "Change element": "Изменить тип",
  "Connect to other element": "Соединить с элементом",
  "Connect using association": "Соединить ассоциацией",
  "Connect using data input association": "Соединить входом данных",
  "Delete": "Удалить",
  "Add lane above": "Добавить дорожку сверху",
  "Add lane below": "Добавить дорожку снизу",
  "Divide into two lanes": "Разделить на две дорожки",
  "Divide into three lanes": "Разделить на три дорожки",
  "Search in diagram": "Поиск по схеме",
  // panel: groups and entries of the standard BPMN provider
  "General": "Основное",
  "Documentation": "Описание",
  "Element documentation": "Описание элемента",
  "Process documentation": "Описание процесса",
  "Name": "Название",
  "ID": "Идентификатор",
  "Executable": "Исполняемый",
  "Version tag": "Метка версии",
  "Process": "Процесс",
  "Message": "Сообщение",
  "Global message reference": "Сообщение",
  "Condition": "Условие",
  "Condition expression": "Выражение условия",
  "Timer": "Таймер",
  "Type": "Тип",
  "Value": "Значение",
  "Date": "Дата",
  "Duration": "Длительность",
  "Cycle": "Цикл",
  "<none>": "<нет>",
  "<empty>": "<пусто>",
  "Create new ...": "Создать…",
  "Multi-instance": "Множественный экземпляр",
  "Signal": "Сигнал",
  "Escalation": "Эскалация",
  "Error": "Ошибка",
  "Errors": "Ошибки",
  "Compensation": "Компенсация",
  "Link": "Ссылка",
  "Inputs": "Входы",
  "Outputs": "Выходы",
  "Extension properties": "Свойства расширения",
  "ID must be unique.": "Идентификатор должен быть уникальным.",
  "ID must not be empty.": "Идентификатор не может быть пустым.",
  "ID must not contain spaces.": "Идентификатор не может содержать пробелы.",
  "ID must be a valid QName.": "Идентификатор должен начинаться с буквы и содержать буквы, цифры, _ или -.",
  "ID must not contain prefix.": "Идентификатор не может содержать префикс.",
  // panel header: element types
  "Start Event": "Начальное событие",
  "Message Start Event": "Начальное событие: событие CRM",
  "Timer Start Event": "Начальное событие: таймер",
  "End Event": "Конечное событие",
  "Terminate End Event": "Завершающее событие",
  "User Task": "Задача сотруднику",
  "Service Task": "Действие в CRM",
  "Business Rule Task": "Таблица решений",
  "Script Task": "Скрипт",
  "Task": "Задача",
  "Exclusive Gateway": "Исключающий шлюз",
  "Inclusive Gateway": "Включающий шлюз",
  "Parallel Gateway": "Параллельный шлюз",
  "Event Based Gateway": "Шлюз по событию",
  "Sequence Flow": "Поток",
  "Default Flow": "Поток по умолчанию",
  "Conditional Flow": "Поток с условием",
  "Intermediate Throw Event": "Промежуточное событие",
  "Timer Intermediate Catch Event": "Ожидание по таймеру",
  "Message Intermediate Catch Event": "Ожидание сообщения",
  "Timer Boundary Event": "Граничный таймер",
  "Timer Boundary Event (Non Interrupting)": "Граничный таймер (без прерывания)",
  "Message Boundary Event": "Граничное сообщение",
  "Text Annotation": "Примечание",
  "Participant": "Участник",
  "Lane": "Дорожка",
  "Group": "Группа",
  // bpmnlint
  "Toggle linting overlays": "Показать/скрыть замечания",
  "No Issues": "Замечаний нет",
  "Issues for child elements": "Замечания к вложенным элементам",
  "Element is not connected": "Элемент ни с чем не соединён",
  "Element is missing label/name": "У элемента нет названия",
  "Element is missing name": "У элемента нет названия",
  "Element is an implicit end": "Элемент — неявный конец процесса",
  "Element is an implicit start": "Элемент — неявное начало процесса",
  "Start event must be blank": "Начальное событие должно быть пустым",
  "Start event is missing event definition": "У начального события не выбран запуск",
  "Sequence flow is missing condition": "У потока нет условия",
  "Gateway forks and joins": "Шлюз одновременно разветвляет и сводит потоки",
  "Gateway is superfluous. It only has one source and target.": "Лишний шлюз: у него один вход и один выход.",
  "Incoming flows do not join": "Входящие потоки не сводятся шлюзом",
  "Flow splits implicitly": "Поток разветвляется без шлюза",
  "Duplicate outgoing sequence flows": "Повторяющиеся исходящие потоки",
  "Duplicate incoming sequence flows": "Повторяющиеся входящие потоки",
  "Element overlaps with other element": "Элемент перекрывает другой элемент",
  "Event has multiple event definitions": "У события несколько определений",
  "Termination is superfluous.": "Лишнее завершающее событие.",
  "Business rule task names no decision table": "Не выбрана таблица решений",
  "Only flows leaving an exclusive or inclusive gateway may have a condition":
    "Условие может быть только у потока, выходящего из шлюза",
  "The default flow cannot have a condition": "У потока по умолчанию не может быть условия",
  "Flow needs a condition or must be the default flow": "Потоку нужно условие, или отметьте его как поток по умолчанию",
  "Pick the CRM event that starts the process": "Выберите событие CRM, которое запускает процесс",
  "Service task has no operation": "У действия не выбрана операция",
  "Timers can be attached to user tasks only": "Таймер можно прикрепить только к задаче сотруднику",
  "Loops are not supported": "Циклы не поддерживаются",
  "User task has no assignment": "У задачи не указано, кому она назначается",
  "An event sub-process cannot be drawn inside another event sub-process; draw it in the process or in an embedded sub-process":
    "Событийный подпроцесс нельзя рисовать внутри другого событийного подпроцесса; нарисуйте его в процессе или во вложенном подпроцессе",
  "An interrupting boundary timer fires once: a cycle is for a non-interrupting one; use a duration or a date here":
    "Прерывающий граничный таймер срабатывает один раз: цикл — только для непрерывающего; здесь укажите длительность или дату",
  "An interrupting event sub-process starts once: a cycle is for a non-interrupting one; use a duration or a date here":
    "Прерывающий событийный подпроцесс запускается один раз: цикл — только для непрерывающего; здесь укажите длительность или дату",
  "A cycle is for timer start events and non-interrupting boundary timers; use a duration or a date here":
    "Цикл — только для начальных событий-таймеров и непрерывающих граничных таймеров; здесь укажите длительность или дату",
};

const PATTERNS_RU = [
  [/^(.*) is missing end event$/, (m) => `${typeRu(m[1])}: нет конечного события`],
  [/^(.*) is missing start event$/, (m) => `${typeRu(m[1])}: нет начального события`],
  [/^(.*) has multiple blank start events$/, (m) => `${typeRu(m[1])}: несколько пустых начальных событий`],
  [/^The engine cannot run a (.*)$/, (m) => `Движок не исполняет элемент «${typeRu(m[1])}»`],
  [/^Unknown assignment "(.*)"$/, (m) => `Неизвестный способ назначения «${m[1]}»`],
  [/^Assignment "(.*)" needs an assignee$/, (m) => `Для назначения «${m[1]}» нужно указать, кому`],
];

function typeRu(type) {
  const spaced = type.replace(/^bpmn:/, "").replace(/(\B[A-Z])/g, " $1");
  const ru = BPMN_RU[spaced] || RU[spaced];
  return ru || type;
}

/**
 * Russian plural form: plural(1, ["ошибка", "ошибки", "ошибок"]) → "ошибка";
 * English: forms[0] for 1, forms[1] otherwise.
 */
export function plural(n, forms) {
  const abs = Math.abs(n);
  if (forms.length < 3) return abs === 1 ? forms[0] : forms[1];
  const d10 = abs % 10, d100 = abs % 100;
  if (d10 === 1 && d100 !== 11) return forms[0];
  if (d10 >= 2 && d10 <= 4 && (d100 < 12 || d100 > 14)) return forms[1];
  return forms[2];
}

/** "3 ошибки" / "3 errors". */
export function count(n, en, ru) {
  return `${n} ${lang() === "ru" ? plural(n, ru) : plural(n, en)}`;
}

function lintSummary(errors, warnings) {
  const e = parseInt(errors, 10) || 0, w = parseInt(warnings, 10) || 0;
  const parts = [];
  if (e) parts.push(count(e, ["error", "errors"], ["ошибка", "ошибки", "ошибок"]));
  if (w) parts.push(count(w, ["warning", "warnings"], ["предупреждение", "предупреждения", "предупреждений"]));
  return parts.join(", ");
}

/** diagram-js's translate service, in the page's language (bpmn-js, panel, bpmnlint). */
export function translate(template, replacements = {}) {
  if (template === "{errors} Errors, {warnings} Warnings") {
    return lintSummary(replacements.errors, replacements.warnings);
  }
  let text = template;
  if (lang() === "ru") {
    if (BPMN_RU[template] || RU[template]) text = BPMN_RU[template] || RU[template];
    else {
      for (const [re, fn] of PATTERNS_RU) {
        const m = template.match(re);
        if (m) { text = fn(m); break; }
      }
    }
  }
  return text.replace(/{([^}]+)}/g, (all, key) => (key in replacements ? replacements[key] : all));
}

export const TranslateModule = { translate: ["value", translate] };

export function lang() {
  return (document.documentElement.lang || "ru").slice(0, 2);
}

export function t(text) {
  return lang() === "ru" && RU[text] ? RU[text] : text;
}
